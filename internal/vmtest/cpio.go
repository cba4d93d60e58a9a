package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// cpioWriter writes an uncompressed "newc" cpio archive, the format the
// kernel unpacks as an initramfs. Parent directories are created on demand;
// timestamps are zero so archives are reproducible.
type cpioWriter struct {
	w    *bufio.Writer
	n    int64
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: 1, dirs: map[string]bool{"": true, "/": true}}
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeChar    = 0o020000
)

func (c *cpioWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad(to int64) {
	if r := c.n % to; r != 0 {
		c.write(make([]byte, to-r))
	}
}

func (c *cpioWriter) header(name string, mode uint32, size int64, rdevMajor, rdevMinor uint32) {
	name = strings.TrimPrefix(name, "/")
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	c.write([]byte(hdr))
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad(4)
}

// mkdirAll creates dir and its parents (mode 0755) unless already written.
func (c *cpioWriter) mkdirAll(dir string) {
	dir = path.Clean("/" + dir)
	if c.dirs[dir] {
		return
	}
	c.mkdirAll(path.Dir(dir))
	c.dirs[dir] = true
	c.header(dir, modeDir|0o755, 0, 0, 0)
}

// bytes adds a regular file with the given contents.
func (c *cpioWriter) bytes(name string, perm uint32, data []byte) {
	c.mkdirAll(path.Dir(name))
	c.header(name, modeFile|perm, int64(len(data)), 0, 0)
	c.write(data)
	c.pad(4)
}

// copyFile adds the host file src (symlinks followed) as name.
func (c *cpioWriter) copyFile(name, src string, perm uint32) {
	if c.err != nil {
		return
	}
	f, err := os.Open(src)
	if err != nil {
		c.err = fmt.Errorf("add %s to initramfs: %w", src, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		c.err = fmt.Errorf("add %s to initramfs: %w", src, err)
		return
	}
	if perm == 0 {
		perm = uint32(st.Mode().Perm())
	}
	c.mkdirAll(path.Dir(name))
	c.header(name, modeFile|perm, st.Size(), 0, 0)
	n, err := io.Copy(c.w, io.LimitReader(f, st.Size()))
	c.n += n
	if err == nil && n != st.Size() {
		err = fmt.Errorf("%s changed size while being read", src)
	}
	if err != nil {
		c.err = fmt.Errorf("add %s to initramfs: %w", src, err)
		return
	}
	c.pad(4)
}

// symlink adds name pointing at target.
func (c *cpioWriter) symlink(name, target string) {
	c.mkdirAll(path.Dir(name))
	c.header(name, modeSymlink|0o777, int64(len(target)), 0, 0)
	c.write([]byte(target))
	c.pad(4)
}

// charDev adds a character device node.
func (c *cpioWriter) charDev(name string, perm, major, minor uint32) {
	c.mkdirAll(path.Dir(name))
	c.header(name, modeChar|perm, 0, major, minor)
}

// close writes the trailer, pads the archive to 512 bytes (so another
// archive may be appended) and flushes.
func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	c.pad(512)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
