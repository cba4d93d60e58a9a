package probe

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// haveHeadLoads tells whether the running kernel's verifier lets
// BTF-typed programs (fentry, fexit, tp_btf) load bytes through
// skb->head, a pointer to a scalar type (read-only untrusted memory,
// Linux 6.17 and later). Where it does, bpf/probe.c filters the linear
// packet in place (probe_config.head_loads) instead of copying it with a
// helper call first. It loads a tp_btf program on kfree_skb that makes
// such a load; any refusal means no.
func haveHeadLoads() bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var skb *btf.Struct
	if err := spec.TypeByName("sk_buff", &skb); err != nil {
		return false
	}
	off, ok := memberOffset(skb.Members, "head")
	if !ok {
		return false
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: "kfree_skb",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R1, asm.R1, 0, asm.DWord),          // the skb
			asm.LoadMem(asm.R1, asm.R1, int16(off), asm.DWord), // skb->head
			asm.LoadMem(asm.R0, asm.R1, 0, asm.Byte),           // head[0]
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
		License: "GPL",
	}, ebpf.ProgramOptions{LogDisabled: true})
	if err != nil {
		return false
	}
	prog.Close()
	return true
}

// memberOffset returns the byte offset of the member called name among
// members, looking into anonymous structs and unions.
func memberOffset(members []btf.Member, name string) (uint32, bool) {
	for _, m := range members {
		if m.Name == name {
			return m.Offset.Bytes(), true
		}
		if m.Name != "" {
			continue
		}
		var inner []btf.Member
		switch t := btf.UnderlyingType(m.Type).(type) {
		case *btf.Struct:
			inner = t.Members
		case *btf.Union:
			inner = t.Members
		}
		if off, ok := memberOffset(inner, name); ok {
			return m.Offset.Bytes() + off, true
		}
	}
	return 0, false
}

// haveFuncIP tells whether the running kernel has the bpf_get_func_ip
// helper (Linux 5.15), by its BPF_FUNC_get_func_ip in the kernel BTF's
// enum bpf_func_id: bpf/probe.c's fentry_caller checks the frames it
// reads against the traced function's address with it.
func haveFuncIP(kernel *btf.Spec) bool {
	var ids *btf.Enum
	if err := kernel.TypeByName("bpf_func_id", &ids); err != nil {
		return false
	}
	for _, v := range ids.Values {
		if v.Name == "BPF_FUNC_get_func_ip" {
			return true
		}
	}
	return false
}
