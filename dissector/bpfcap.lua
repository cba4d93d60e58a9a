-- bpfcap.lua: Wireshark fields for bpfcap's per-packet metadata.
--
-- bpfcap writes what it knows about each packet (hook, verdict, drop
-- reason and location, device, direction, process, netns, mark) as text
-- in the packet's pcapng comment: "hook=tp_btf:kfree_skb reason=NO_SOCKET
-- dev=eth0 pid=42 comm=nc netns=4026531840 mark=0x10". This post-dissector
-- turns every item into a field that display filters, columns and
-- statistics can use:
--
--   bpfcap.hook bpfcap.verdict bpfcap.reason bpfcap.location bpfcap.dev
--   bpfcap.dir bpfcap.pid bpfcap.comm bpfcap.netns bpfcap.mark
--   bpfcap.parent (a tracked clone's parent id) bpfcap.stack (kernel stack)
--
-- e.g. tshark -X lua_script:bpfcap.lua -r drops.pcapng -Y 'bpfcap.reason == "NETFILTER_DROP"'
-- Install: make install-dissector (Wireshark's personal Lua plugin folder).
-- A process name runs up to the next " key=" of a known key, so it may
-- hold spaces; other values end at a space. Comments that do not start with a bpfcap key are left
-- alone.

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
-- The order bpfcap writes them in, for the tree.
local order = { "hook", "verdict", "reason", "location", "dev", "dir", "pid", "comm", "netns", "mark", "parent", "stack" }
local numeric = { pid = true, netns = true, mark = true }

bpfcap.fields = {}
for _, k in ipairs(order) do
	table.insert(bpfcap.fields, fields[k])
end

local comment_field = Field.new("frame.comment")

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

local function number(key, v)
	if key == "mark" then
		return tonumber((v:gsub("^0x", "")), 16)
	end
	return tonumber(v)
end

function bpfcap.dissector(tvb, pinfo, tree)
	for _, c in ipairs({ comment_field() }) do
		local meta = parse(tostring(c.value))
		if meta then
			local sub = tree:add(bpfcap, "bpfcap: " .. tostring(c.value))
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
	end
end

register_postdissector(bpfcap)
