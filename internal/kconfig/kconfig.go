package kconfig

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// EnvConfig names the environment variable that points at a kernel config
// file; it takes precedence over /proc/config.gz and /boot/config-*.
const EnvConfig = "BPFCAP_KCONFIG"

// EnvVMTest is set (to the kernel's name) by the vmtest harness in its
// guests. Tests may read it to know that every feature the config enables
// must work.
const EnvVMTest = "BPFCAP_VMTEST"

// Tristate is the state of one configuration symbol.
type Tristate int

const (
	// Unknown means no configuration could be read.
	Unknown Tristate = iota
	// No means the symbol is "is not set" or absent from a readable config
	// (an absent symbol does not exist in this kernel version).
	No
	// Yes means the symbol is built in (=y) or has a non-tristate value.
	Yes
	// Module means the symbol is built as a module (=m).
	Module
)

// String returns "unknown", "n", "y" or "m".
func (s Tristate) String() string {
	switch s {
	case No:
		return "n"
	case Yes:
		return "y"
	case Module:
		return "m"
	}
	return "unknown"
}

// On reports whether the feature is available (built in or a module).
func (s Tristate) On() bool { return s == Yes || s == Module }

// Config is a parsed kernel configuration.
type Config struct {
	source string
	values map[string]string
}

// Source is the file the configuration was read from.
func (c *Config) Source() string { return c.source }

// State returns the state of sym ("CONFIG_KPROBES"; the CONFIG_ prefix may
// be left out).
func (c *Config) State(sym string) Tristate {
	if c == nil {
		return Unknown
	}
	v, ok := c.values[normalize(sym)]
	switch {
	case !ok || v == "n":
		return No
	case v == "m":
		return Module
	}
	return Yes
}

// Value returns the raw value of sym ("y", "m", "0x100", `"str"`) and whether
// the config sets it.
func (c *Config) Value(sym string) (string, bool) {
	if c == nil {
		return "", false
	}
	v, ok := c.values[normalize(sym)]
	return v, ok
}

func normalize(sym string) string {
	if !strings.HasPrefix(sym, "CONFIG_") {
		return "CONFIG_" + sym
	}
	return sym
}

// Parse reads a kernel .config from r; source names it in messages.
func Parse(r io.Reader, source string) (*Config, error) {
	c := &Config{source: source, values: make(map[string]string)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if sym, ok := strings.CutPrefix(line, "# "); ok {
			if name, ok := strings.CutSuffix(sym, " is not set"); ok && strings.HasPrefix(name, "CONFIG_") {
				c.values[name] = "n"
			}
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "CONFIG_") {
			continue
		}
		c.values[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel config %s: %w", source, err)
	}
	if len(c.values) == 0 {
		return nil, fmt.Errorf("kernel config %s: no CONFIG_ symbols found", source)
	}
	return c, nil
}

// Load reads the running kernel's configuration from $BPFCAP_KCONFIG,
// /proc/config.gz or /boot/config-$(uname -r), the first that exists.
// The error lists every place it looked.
func Load() (*Config, error) {
	var tried []string
	if p := os.Getenv(EnvConfig); p != "" {
		c, err := parseFile(p)
		if err != nil {
			return nil, fmt.Errorf("$%s: %w", EnvConfig, err)
		}
		return c, nil
	}
	candidates := []string{"/proc/config.gz"}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		candidates = append(candidates, "/boot/config-"+unix.ByteSliceToString(uts.Release[:]))
	}
	for _, p := range candidates {
		c, err := parseFile(p)
		if err == nil {
			return c, nil
		}
		tried = append(tried, err.Error())
	}
	return nil, fmt.Errorf("no kernel config found (set $%s to a config file): %s", EnvConfig, strings.Join(tried, "; "))
}

func parseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open kernel config: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("kernel config %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	return Parse(r, path)
}

// Enabled loads the running kernel's configuration and returns the state of
// sym; Unknown when no configuration is readable.
func Enabled(sym string) Tristate {
	c, err := Load()
	if err != nil {
		return Unknown
	}
	return c.State(sym)
}
