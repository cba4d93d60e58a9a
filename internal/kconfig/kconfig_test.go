package kconfig

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

const sample = `#
# Automatically generated file; DO NOT EDIT.
CONFIG_KPROBES=y
# CONFIG_FPROBE is not set
CONFIG_VETH=m
CONFIG_NR_CPUS=64
CONFIG_LOCALVERSION=""
`

func TestParseStates(t *testing.T) {
	c, err := Parse(strings.NewReader(sample), "sample")
	if err != nil {
		t.Fatal(err)
	}
	for sym, want := range map[string]Tristate{
		"CONFIG_KPROBES":    Yes,
		"KPROBES":           Yes,
		"CONFIG_FPROBE":     No,
		"CONFIG_VETH":       Module,
		"CONFIG_NR_CPUS":    Yes,
		"CONFIG_NET_XGRESS": No, // absent: does not exist in this kernel
	} {
		if got := c.State(sym); got != want {
			t.Errorf("State(%s) = %v, want %v", sym, got, want)
		}
	}
	if v, ok := c.Value("CONFIG_NR_CPUS"); !ok || v != "64" {
		t.Errorf("Value(CONFIG_NR_CPUS) = %q, %v", v, ok)
	}
	var nilConfig *Config
	if got := nilConfig.State("CONFIG_KPROBES"); got != Unknown {
		t.Errorf("nil config: got %v, want unknown", got)
	}
}

func TestParseRejectsNonConfig(t *testing.T) {
	if _, err := Parse(strings.NewReader("hello\n"), "junk"); err == nil || !strings.Contains(err.Error(), "junk") {
		t.Fatalf("want an error naming the file, got %v", err)
	}
}

func TestLoadFromEnvGzip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write([]byte(sample)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvConfig, path)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Source() != path || c.State("CONFIG_VETH") != Module {
		t.Fatalf("loaded %s: VETH=%v", c.Source(), c.State("CONFIG_VETH"))
	}
	if Enabled("CONFIG_FPROBE") != No {
		t.Fatalf("Enabled(CONFIG_FPROBE) = %v", Enabled("CONFIG_FPROBE"))
	}
}

func TestLoadMissingEnvFile(t *testing.T) {
	t.Setenv(EnvConfig, filepath.Join(t.TempDir(), "nope"))
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), EnvConfig) {
		t.Fatalf("want an error naming $%s, got %v", EnvConfig, err)
	}
	if got := Enabled("CONFIG_KPROBES"); got != Unknown {
		t.Fatalf("Enabled with unreadable config = %v, want unknown", got)
	}
}

// TestRunningKernel checks that this machine's (or guest's) config is
// readable; under vmtest it must be.
func TestRunningKernel(t *testing.T) {
	testutils.RunsInGuests(t)
	c, err := Load()
	if err != nil {
		if os.Getenv(EnvVMTest) != "" {
			t.Fatalf("under vmtest the kernel config must be readable: %v", err)
		}
		t.Skipf("no kernel config on this machine: %v", err)
	}
	if c.State("CONFIG_BPF_SYSCALL") != Yes {
		t.Fatalf("%s: CONFIG_BPF_SYSCALL=%v; a kernel running bpfcap tests must have it", c.Source(), c.State("CONFIG_BPF_SYSCALL"))
	}
	t.Logf("kernel config %s: KPROBES=%v FPROBE=%v NET_XGRESS=%v", c.Source(), c.State("KPROBES"), c.State("FPROBE"), c.State("NET_XGRESS"))
}
