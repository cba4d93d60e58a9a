# Wireshark extcap: bpfcap as a capture source in Wireshark's
# interface list (bpfcap-drops, bpfcap-trace, bpfcap-tc, bpfcap-xdp, ...).
#   make install-extcap     # build, then write EXTCAP_DIR/bpfcap-extcap, a script
#                           # that runs $(BPFCAP_EXTCAP_BIN) extcap "$@"
#   make uninstall-extcap   # remove it
#   make test-extcap        # the extcap tests (as root; tshark drives one end to end)
# EXTCAP_DIR defaults to the folder tshark reads extcaps from (tshark -G
# folders): "Personal Extcap path" where Wireshark has one (releases after 4.0),
# else "Extcap path" (Wireshark 4.0: the global folder, which needs sudo; a
# non-root Wireshark 4.0 also reads $WIRESHARK_EXTCAP_DIR instead).
# The wrapper runs the binary in place: reinstall after moving it.
.PHONY: install-extcap uninstall-extcap test-extcap

BPFCAP_EXTCAP_BIN ?= $(abspath $(BIN))
EXTCAP_DIR ?= $(shell tshark -G folders 2>/dev/null | awk -F '\t' '/^Personal Extcap path:/ {p = $$2} /^Extcap path:/ {g = $$2} END {print (p != "" ? p : g)}')

install-extcap: build
	@test -n "$(EXTCAP_DIR)" || { echo "install-extcap: no EXTCAP_DIR (is tshark installed?): give one, e.g. make install-extcap EXTCAP_DIR=~/.local/lib/wireshark/extcap" >&2; exit 1; }
	$(BPFCAP_EXTCAP_BIN) extcap --install "$(EXTCAP_DIR)"

uninstall-extcap:
	@test -n "$(EXTCAP_DIR)" || { echo "uninstall-extcap: no EXTCAP_DIR: give the folder you installed into" >&2; exit 1; }
	rm -f "$(EXTCAP_DIR)/bpfcap-extcap"

test-extcap: deps
	$(GO) test $(TESTFLAGS) -run '^TestExtcap' ./cmd/bpfcap/

# Wireshark dissector for bpfcap's metadata (bpfcap.hook, bpfcap.reason, ...):
#   make install-dissector     # copy dissector/bpfcap.lua to LUA_PLUGIN_DIR
#   make uninstall-dissector
# LUA_PLUGIN_DIR defaults to tshark's "Personal Lua Plugins" folder.
.PHONY: install-dissector uninstall-dissector

LUA_PLUGIN_DIR ?= $(shell tshark -G folders 2>/dev/null | awk -F '\t' '/^Personal Lua Plugins:/ {print $$2}')

install-dissector:
	@test -n "$(LUA_PLUGIN_DIR)" || { echo "install-dissector: no LUA_PLUGIN_DIR (is tshark installed?): give one, e.g. make install-dissector LUA_PLUGIN_DIR=~/.local/lib/wireshark/plugins" >&2; exit 1; }
	install -d "$(LUA_PLUGIN_DIR)"
	install -m 0644 dissector/bpfcap.lua "$(LUA_PLUGIN_DIR)/bpfcap.lua"

uninstall-dissector:
	@test -n "$(LUA_PLUGIN_DIR)" || { echo "uninstall-dissector: no LUA_PLUGIN_DIR: give the folder you installed into" >&2; exit 1; }
	rm -f "$(LUA_PLUGIN_DIR)/bpfcap.lua"
