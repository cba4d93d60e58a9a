package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/internal/kconfig"
)

func TestAdjacentCodename(t *testing.T) {
	csv := "version,codename,series,created,release,eol\n" +
		"11,Bullseye,bullseye,2019-07-06,2021-08-14,2024-08-14\n" +
		"12,Bookworm,bookworm,2021-08-14,2023-06-10,2026-06-10\n" +
		"13,Trixie,trixie,2023-06-10\n" +
		",Sid,sid,1993-08-16\n"
	if got, want := codenamesFromCSV([]byte(csv)), []string{"bullseye", "bookworm", "trixie"}; !slices.Equal(got, want) {
		t.Errorf("codenamesFromCSV = %q, want %q", got, want)
	}
	// On this machine (debian.csv or the built-in list) bookworm's
	// predecessor is bullseye, whose 5.10 the matrix runs, and its
	// successor trixie, whose backports offer the newest series.
	if got, err := adjacentCodename("bookworm", -1); err != nil || got != "bullseye" {
		t.Errorf("adjacentCodename(bookworm, -1) = %q, %v; want bullseye", got, err)
	}
	if got, err := adjacentCodename("bookworm", 1); err != nil || got != "trixie" {
		t.Errorf("adjacentCodename(bookworm, 1) = %q, %v; want trixie", got, err)
	}
	for _, c := range []string{"sid", "noble", ""} {
		for _, step := range []int{-1, 1} {
			if got, err := adjacentCodename(c, step); err == nil {
				t.Errorf("adjacentCodename(%q, %d) = %q, want an error", c, step, got)
			}
		}
	}
	// The ends of the list have no neighbour beyond them.
	names := codenamesFromCSV([]byte(csv))
	for _, c := range []struct {
		codename string
		step     int
		want     string
	}{
		{"bookworm", 1, "trixie"}, {"bookworm", -1, "bullseye"}, {"bullseye", 2, "trixie"},
		{"trixie", 1, ""}, {"bullseye", -1, ""}, {"sid", 1, ""},
	} {
		got, err := stepCodename(names, c.codename, c.step)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("stepCodename(%q, %d) = %q, %v; want %q", c.codename, c.step, got, err, c.want)
		}
	}
}

func TestPinnedDepends(t *testing.T) {
	// apt-cache show of a 7.x image package (split build), then of a 6.1
	// one (everything in the image package), each followed by a second
	// stanza that must be ignored.
	split := "Package: linux-image-7.3.4+deb13-cloud-amd64\n" +
		"Version: 7.3.4-1~bpo13+1\n" +
		"Depends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1)\n" +
		"\n" +
		"Package: linux-image-7.3.4+deb13-cloud-amd64\n" +
		"Version: 7.3.4-1~bpo13+2\n" +
		"Depends: linux-other (= 7.3.4-1~bpo13+1)\n"
	want := []string{"linux-base-7.3.4+deb13-cloud-amd64", "linux-binary-7.3.4+deb13-cloud-amd64", "linux-modules-7.3.4+deb13-cloud-amd64"}
	if got := pinnedDepends(split, "7.3.4-1~bpo13+1"); !slices.Equal(got, want) {
		t.Errorf("pinnedDepends(7.3) = %q, want %q", got, want)
	}
	if got := pinnedDepends(split, "7.3.4-1~bpo13+2"); got != nil {
		t.Errorf("pinnedDepends(other version) = %q, want none", got)
	}
	whole := "Package: linux-image-6.1.0-57-cloud-amd64\n" +
		"Version: 6.1.192-3\n" +
		"Depends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool\n"
	if got := pinnedDepends(whole, "6.1.192-3"); got != nil {
		t.Errorf("pinnedDepends(6.1) = %q, want none", got)
	}
}

func TestModulesToLoad(t *testing.T) {
	parse := func(text string) *kconfig.Config {
		t.Helper()
		cfg, err := kconfig.Parse(strings.NewReader(text), "config-test")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	all := "CONFIG_VETH=m\nCONFIG_NET_SCH_INGRESS=m\nCONFIG_NET_CLS_BPF=m\nCONFIG_XFRM_USER=m\nCONFIG_NF_TABLES=m\n"
	// 7.x builds nfnetlink in: nothing to load for it.
	got, err := modulesToLoad(parse(all + "CONFIG_NETFILTER_NETLINK=y\n"))
	if want := []string{"veth", "sch_ingress", "cls_bpf", "xfrm_user", "nf_tables"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("modulesToLoad(nfnetlink=y) = %q, %v; want %q", got, err, want)
	}
	got, err = modulesToLoad(parse(all + "CONFIG_NETFILTER_NETLINK=m\n"))
	if want := guestModuleNames(); err != nil || !slices.Equal(got, want) {
		t.Errorf("modulesToLoad(all =m) = %q, %v; want %q", got, err, want)
	}
	if got, err := modulesToLoad(parse(all + "# CONFIG_NETFILTER_NETLINK is not set\n")); err == nil {
		t.Errorf("modulesToLoad(nfnetlink not set) = %q, want an error", got)
	}
}

func TestFindKernelFiles(t *testing.T) {
	touch := func(root string, paths ...string) {
		t.Helper()
		for _, p := range paths {
			p = filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Up to 6.12: boot/vmlinuz-<release>, modules in lib/modules.
	old := t.TempDir()
	touch(old, "boot/vmlinuz-6.1.0-57-cloud-amd64", "boot/config-6.1.0-57-cloud-amd64", "lib/modules/6.1.0-57-cloud-amd64/modules.order")
	f, err := findKernelFiles(old)
	if want := (kernelFiles{"6.1.0-57-cloud-amd64", filepath.Join(old, "boot/vmlinuz-6.1.0-57-cloud-amd64"), filepath.Join(old, "boot/config-6.1.0-57-cloud-amd64")}); err != nil || f != want {
		t.Errorf("findKernelFiles(6.1 layout) = %+v, %v; want %+v", f, err, want)
	}
	// 7.x: everything in usr/lib/modules/<release>; lib must lead there
	// for depmod -b.
	split := t.TempDir()
	touch(split, "usr/lib/modules/7.3.4+deb13-cloud-amd64/vmlinuz", "usr/lib/modules/7.3.4+deb13-cloud-amd64/config", "usr/lib/modules/7.3.4+deb13-cloud-amd64/modules.order")
	f, err = findKernelFiles(split)
	dir := filepath.Join(split, "usr/lib/modules/7.3.4+deb13-cloud-amd64")
	if want := (kernelFiles{"7.3.4+deb13-cloud-amd64", filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "config")}); err != nil || f != want {
		t.Errorf("findKernelFiles(7.x layout) = %+v, %v; want %+v", f, err, want)
	}
	if _, err := os.Stat(filepath.Join(split, "lib/modules/7.3.4+deb13-cloud-amd64/modules.order")); err != nil {
		t.Errorf("lib/modules does not lead to usr/lib/modules: %v", err)
	}
	// Two kernels, or none, are an error.
	touch(split, "boot/vmlinuz-7.3.4+deb13-cloud-amd64")
	if f, err := findKernelFiles(split); err == nil {
		t.Errorf("findKernelFiles(two kernels) = %+v, want an error", f)
	}
	if f, err := findKernelFiles(t.TempDir()); err == nil {
		t.Errorf("findKernelFiles(empty) = %+v, want an error", f)
	}
}
