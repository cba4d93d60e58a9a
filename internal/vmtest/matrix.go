package main

// matrixEntry is one package of the default matrix and the -run pattern
// that selects its guest-safe privileged tests (no tshark, tcpdump,
// iptables, bpftool-as-a-check or network beyond the test's own
// namespaces). The owners of each package named these tests in
// /work/coord/requests.md.
type matrixEntry struct {
	pkg string // "./probe"
	run string
}

// defaultMatrix is what `make vmtest` runs when PKGS is empty. Each
// package's pattern must match at least one test, or the matrix fails
// ("no tests matched"): tests that disappear are noticed.
func defaultMatrix() []matrixEntry {
	return []matrixEntry{
		// The harness's own proof of what each kernel supports.
		{pkg: "./internal/vmtest/guestcheck", run: "."},
		{pkg: "./internal/kconfig", run: "^TestRunningKernel$"},
		{pkg: "./internal/testutils", run: "^TestVethPairPings$"},
		{pkg: "./internal/netnsfind", run: "^TestFindsTestNamespaces$"},
		// Capture core (core helper).
		{pkg: "./perfring", run: "^(TestDecode|TestReaderErrors|TestReaderNoData)$"},
		{pkg: "./hook", run: "^(TestRingDelivery|TestSnaplen|TestLossCounted|TestUserspaceFallback|TestKernelFilter|TestSharedRing|TestDeviceRestriction|TestEventLayout|TestInlineFilter|TestInlineFilterRefused|TestVerifierRefusalFallback)$"},
		// Tracing hooks (trace helper): kprobe, fentry/fexit, tracepoint,
		// tp_btf, raw_tp, the fallback chain, drop reasons.
		{pkg: "./probe", run: "^Test(Parse|LooksLike|TraceFallbackChain|TraceResolve|TraceDropReasons|ListFindsHooks|TraceDropNoSocket|TraceMultiHookPacketID|TraceProgramsVerify|TraceDeviceFilter|TraceAutoHeader|TracePagedData)"},
		// XDP hook and tc (xdp helper). TestHookCostBudget is a timing
		// budget: meaningless under TCG.
		{pkg: "./xdpcap", run: "^Test(ParseActions|FirewallVerdicts|OpenHookRefuses|OccupantsHolders|CaptureHookDNS|CaptureStaleAndBusy|CaptureRedirect|CaptureFilterInlined|CaptureFragsJumbo)$"},
		{pkg: "./tccap", run: "^Test(CaptureDirections|OpenErrors|StaleClsactFilter)$"},
		{pkg: "./bench/xdp", run: "^(TestFloodReachesPeer|TestForwardSetupForwards)$"},
		// bpfcap prog (prog helper): bpf/bpfcap.h's examples captured
		// through their own maps. TestOutputCostWithinNoise is a timing
		// budget: host only.
		{pkg: "./progcap", run: "^Test(Capture|OpenErrors)"},
		{pkg: ".", run: "^TestRunInterfaceAdder$"},
		// Translator against each kernel's verifier (filter helper); the
		// differential test shrinks its packet corpus under $BPFCAP_VMTEST.
		// Left out to keep the matrix under 10 minutes on 2 cores:
		// TestFilterInline and TestFilterInlineRefuses (~80 s more per
		// guest; run them with PKGS=./filter RUN='^TestFilterInline').
		// TestFilterDumpMatchesTcpdump needs tcpdump.
		{pkg: "./filter", run: "^(TestFilterCompileErrors|TestFilterParseProto|TestFilterTranslateRefuses|TestFilterMatcher|TestFilterSplice|TestFilterSpliceLoads|TestFilterSemantics|TestFilterDifferential|TestFilterDemoPcap|FuzzTranslate)$"},
		// CLI end to end: trace/list (trace helper, prefixes), xdp/tc (xdp
		// helper), filter (filter helper). Host-only tests (TestXDPHost*,
		// TestTCHost*, TestTraceHost*, TestFilterCLIReadWrite and
		// TestFilterCLIInputs: tcpdump, tshark) stay out.
		{pkg: "./cmd/bpfcap", run: "^Test(ListKfreeSkb|ListNoMatch|TraceCLIDropNoSocket)|^Test(XDPCLIHookDNS|XDPCLIActions|XDPCLIBadInput|XDPCLIDevice|XDPCLIPerfSnaplen|TCCLIDirections|TCCLIBadInput|TCCLIEgressSnaplen|FilterCLIDump|FilterCLIBadInput|ProgDropsByName|ProgByIDSnaplen|ProgBadInput|ProgHelp)$"},
	}
}
