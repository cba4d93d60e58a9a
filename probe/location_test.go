package probe

import (
	"testing"
)

// TestLocationConfig: a target whose location is its caller configures
// its program to read the return address (probe_config.location_from),
// one that finds it in an argument to read that argument, and programs
// shared by attach cookie are never shared between the two.
func TestLocationConfig(t *testing.T) {
	cases := []struct {
		target    Target
		from, arg uint32
		wantProg  string
	}{
		{Target{Kind: KindKprobe, Name: "sk_skb_reason_drop", SkbArg: 2, ReasonArg: 3, HasReason: true, HasLocation: true, LocationIsCaller: true}, locationFromCaller, 0, "probe_kprobe"},
		{Target{Kind: KindFentry, Name: "kfree_skb_reason", SkbArg: 1, ReasonArg: 2, HasReason: true, HasLocation: true, LocationIsCaller: true}, locationFromCaller, 0, "probe_fentry"},
		{Target{Kind: KindTPBTF, Name: "kfree_skb", SkbArg: 1, HasLocation: true, LocationArg: 2}, locationFromArg, 1, "probe_tp_btf"},
		{Target{Kind: KindTracepoint, Category: "skb", Name: "kfree_skb", SkbOffset: 8, HasLocation: true, LocationOffset: 16}, locationFromArg, 16, "probe_tracepoint"},
		{Target{Kind: KindKprobe, Name: "ip_rcv", SkbArg: 1}, 0, 0, "probe_kprobe"},
	}
	base, err := loadProbe()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		spec, prog, err := prepareSpec(base, &c.target, headerAuto, pageMap{}, false, false)
		if err != nil {
			t.Fatalf("%s: %v", &c.target, err)
		}
		var cfg probeConfig
		if err := spec.Variables["probe_cfg"].Get(&cfg); err != nil {
			t.Fatal(err)
		}
		if prog != c.wantProg || cfg.LocationFrom != c.from || cfg.LocationArg != c.arg {
			t.Errorf("%s: program %s, location_from %d, location_arg %d; want %s, %d, %d",
				&c.target, prog, cfg.LocationFrom, cfg.LocationArg, c.wantProg, c.from, c.arg)
		}
	}

	// fentry finds its caller past the function's saved arguments, and
	// checks the frame with bpf_get_func_ip where the kernel has it.
	for _, funcIP := range []bool{false, true} {
		tg := Target{Kind: KindFentry, Name: "sk_skb_reason_drop", SkbArg: 2, ReasonArg: 3, HasReason: true, HasLocation: true, LocationIsCaller: true, ArgRegs: 3}
		spec, _, err := prepareSpec(base, &tg, headerAuto, pageMap{}, false, funcIP)
		if err != nil {
			t.Fatal(err)
		}
		var cfg probeConfig
		if err := spec.Variables["probe_cfg"].Get(&cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.ArgRegs != 3 || (cfg.FuncIp == 1) != funcIP {
			t.Errorf("fentry with bpf_get_func_ip %v: arg_regs %d, func_ip %d; want 3, %v", funcIP, cfg.ArgRegs, cfg.FuncIp, funcIP)
		}
	}

	// consume_skb and kfree_skbmem alike but for the location: two
	// programs; two functions that read their caller: one.
	targets := []*Target{
		{Kind: KindKprobe, Name: "consume_skb", SkbArg: 1, Cookie: true, HasLocation: true, LocationIsCaller: true},
		{Kind: KindKprobe, Name: "kfree_skbmem", SkbArg: 1, Cookie: true},
		{Kind: KindKprobe, Name: "kfree_skb", SkbArg: 1, Cookie: true, HasLocation: true, LocationIsCaller: true},
	}
	units := loadUnits(targets)
	if len(units) != 2 || len(units[0]) != 2 || units[0][1] != 2 {
		t.Errorf("load units %v, want [[0 2] [1]]", units)
	}
}

// TestCallerLocationFunctions: the functions that free an skb and report
// their caller to the kfree_skb or consume_skb tracepoint read their
// caller; other functions, even of the free path, do not.
func TestCallerLocationFunctions(t *testing.T) {
	for fn, want := range map[string]bool{
		"kfree_skb": true, "kfree_skb_reason": true, "sk_skb_reason_drop": true, "consume_skb": true,
		"__kfree_skb": false, "kfree_skbmem": false, "kfree_skb_list_reason": false, "ip_rcv": false,
	} {
		if got := callerLocation(fn); got != want {
			t.Errorf("callerLocation(%s) = %v, want %v", fn, got, want)
		}
	}
}
