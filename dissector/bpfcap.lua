-- bpfcap.lua: Wireshark fields for bpfcap's per-packet metadata.
--
-- bpfcap writes one interface per hook (its name is the hook spec, e.g.
-- "tp_btf:kfree_skb"), the direction in epb_flags, the verdict in
-- epb_verdict, and what no pcapng field carries as text in the packet's
-- comment: "reason=NO_SOCKET location=ip_rcv_core+0x1a dev=eth0 pid=42
-- comm=nc netns=4026531840 mark=0x10". Where one interface sees one device
-- (tc or XDP on a device, a probe with -i), its device and netns are written
-- once, at the end of the interface description ("...; dev=eth0
-- netns=4026531840"), and packets' comments leave them out unless they
-- differ. This post-dissector turns all of it
-- into fields that display filters, columns and statistics can use:
--
--   bpfcap.hook bpfcap.verdict bpfcap.reason bpfcap.location bpfcap.dev
--   bpfcap.dir bpfcap.pid bpfcap.comm bpfcap.netns bpfcap.mark
--   bpfcap.parent (a tracked clone's parent id) bpfcap.stack (kernel stack)
--
-- e.g. tshark -X lua_script:bpfcap.lua -r drops.pcapng -Y 'bpfcap.reason == "NETFILTER_DROP"'
-- Install: make install-dissector (Wireshark's personal Lua plugin folder).
--
-- A frame is bpfcap's when its comment starts with a bpfcap key or its
-- interface name holds a ':' (every hook spec does; a Linux device name
-- cannot). A process name runs up to the next " key=" of a known key, so
-- it may hold spaces; other values end at a space. Files of earlier
-- versions also had hook=, verdict= and dir= in the comment; those are
-- read when the frame has no such field.

local bpfcap = Proto("bpfcap", "bpfcap packet metadata")

local fields = {
	hook     = ProtoField.string("bpfcap.hook", "Hook"),
	verdict  = ProtoField.string("bpfcap.verdict", "Verdict"),
	reason   = ProtoField.string("bpfcap.reason", "Drop reason"),
	location = ProtoField.string("bpfcap.location", "Drop location"),
	dev      = ProtoField.string("bpfcap.dev", "Device"),
	dir      = ProtoField.string("bpfcap.dir", "Direction"),
	pid      = ProtoField.uint32("bpfcap.pid", "Process ID", base.DEC),
	comm     = ProtoField.string("bpfcap.comm", "Process name"),
	netns    = ProtoField.uint32("bpfcap.netns", "Network namespace (inode)", base.DEC),
	mark     = ProtoField.uint32("bpfcap.mark", "Mark", base.HEX),
	parent   = ProtoField.string("bpfcap.parent", "Parent packet id"),
	stack    = ProtoField.string("bpfcap.stack", "Kernel stack"),
}
-- The order of the tree (and of the comment's keys).
local order = { "hook", "verdict", "reason", "location", "dev", "dir", "pid", "comm", "netns", "mark", "parent", "stack" }
local numeric = { pid = true, netns = true, mark = true }

bpfcap.fields = {}
for _, k in ipairs(order) do
	table.insert(bpfcap.fields, fields[k])
end

local comment_field = Field.new("frame.comment")
local ifname_field = Field.new("frame.interface_name")
local ifdesc_field = Field.new("frame.interface_description")
local flags_dir_field = Field.new("frame.packet_flags_direction")
local xdp_field = Field.new("frame.verdict.ebpf_xdp")
local tc_field = Field.new("frame.verdict.ebpf_tc")

-- Verdict names as bpfcap prints them (pcapng.VerdictName; a test checks
-- that both agree).
local xdp_names = { [0] = "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT" }
local tc_names = {
	[-1] = "TC_ACT_UNSPEC", [0] = "TC_ACT_OK", "TC_ACT_RECLASSIFY", "TC_ACT_SHOT", "TC_ACT_PIPE",
	"TC_ACT_STOLEN", "TC_ACT_QUEUED", "TC_ACT_REPEAT", "TC_ACT_REDIRECT", "TC_ACT_TRAP",
}
-- epb_flags bits 0-1.
local dir_names = { [1] = "in", [2] = "out" }

-- parse returns the key/value table of a bpfcap comment, or nil.
local function parse(s)
	local starts = {}
	for pos, key in s:gmatch("()([%a_]+)=") do
		if fields[key] and (pos == 1 or s:sub(pos - 1, pos - 1) == " ") then
			table.insert(starts, { pos = pos, key = key })
		end
	end
	if #starts == 0 or starts[1].pos ~= 1 then
		return nil
	end
	local out = {}
	for i, st in ipairs(starts) do
		local last = #s
		if starts[i + 1] then
			last = starts[i + 1].pos - 2
		end
		local v = s:sub(st.pos + #st.key + 1, last)
		if st.key ~= "comm" then
			-- only a comm may hold spaces; a space ends any other value
			v = v:match("^[^ ]*")
		end
		out[st.key] = v
	end
	return out
end

-- iface_device returns the dev and netns an interface description names
-- in its last "; " part, or nil.
local function iface_device(desc)
	local last = desc:match(".*; (.*)$") or desc
	local m = parse(last)
	if not m then
		return nil
	end
	for k in pairs(m) do
		if k ~= "dev" and k ~= "netns" then
			return nil
		end
	end
	return m
end

local function number(key, v)
	if key == "mark" then
		return tonumber((v:gsub("^0x", "")), 16)
	end
	return tonumber(v)
end

-- verdict names the frame's epb_verdict, or returns nil.
local function verdict()
	local x = xdp_field()
	if x then
		local v = tonumber(tostring(x.value))
		return xdp_names[v] or ("XDP_" .. tostring(v))
	end
	local t = tc_field()
	if t then
		local v = tonumber(tostring(t.value))
		return tc_names[v] or ("TC_ACT_" .. tostring(v))
	end
	return nil
end

function bpfcap.dissector(tvb, pinfo, tree)
	local meta, text
	for _, c in ipairs({ comment_field() }) do
		meta = parse(tostring(c.value))
		if meta then
			text = tostring(c.value)
			break
		end
	end
	local ifname = ifname_field()
	if ifname and tostring(ifname.value):find(":", 1, true) then
		-- A comment names the hook only when it is not the interface.
		meta = meta or {}
		meta.hook = meta.hook or tostring(ifname.value)
	end
	if not meta then
		return
	end
	local ifdesc = ifdesc_field()
	local idev = ifdesc and iface_device(tostring(ifdesc.value))
	if idev then
		meta.dev = meta.dev or idev.dev
		meta.netns = meta.netns or idev.netns
	end
	local dir = flags_dir_field()
	if dir and dir_names[dir.value] then
		meta.dir = dir_names[dir.value]
	end
	meta.verdict = verdict() or meta.verdict
	local sub = tree:add(bpfcap, "bpfcap: " .. (meta.hook or "") .. (text and (" " .. text) or ""))
	for _, k in ipairs(order) do
		local v = meta[k]
		if v ~= nil then
			if numeric[k] then
				local n = number(k, v)
				if n then
					sub:add(fields[k], n)
				end
			else
				sub:add(fields[k], v)
			end
		end
	end
end

register_postdissector(bpfcap)
