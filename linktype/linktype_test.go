package linktype

import "testing"

// TestTableUnique: every key of the table names one entry, so that each
// lookup has one answer.
func TestTableUnique(t *testing.T) {
	keys := map[string]map[any]string{"proto": {}, "linktype": {}, "dlt": {}, "name": {}, "cname": {}}
	for _, e := range Table() {
		for kind, v := range map[string]any{"proto": e.Proto, "linktype": e.LinkType, "dlt": e.DLT, "name": e.Name, "cname": e.CName} {
			if prev, ok := keys[kind][v]; ok {
				t.Errorf("%s %v of %s is also %s's", kind, v, e.Proto, prev)
			}
			keys[kind][v] = e.Proto
		}
		if e.Proto == "" || e.Name == "" || e.Description == "" || e.CName == "" {
			t.Errorf("entry %+v has an empty name", e)
		}
	}
}

func TestLookups(t *testing.T) {
	for _, e := range Table() {
		if got, ok := ByProto(e.Proto); !ok || got != e {
			t.Errorf("ByProto(%q) = %+v, %v", e.Proto, got, ok)
		}
		if got, ok := ByLinkType(e.LinkType); !ok || got != e {
			t.Errorf("ByLinkType(%d) = %+v, %v", e.LinkType, got, ok)
		}
		if got, ok := ByDLT(e.DLT); !ok || got != e {
			t.Errorf("ByDLT(%d) = %+v, %v", e.DLT, got, ok)
		}
	}
	if e, ok := ByProto("ETH"); !ok || e.LinkType != Ethernet {
		t.Errorf("ByProto(ETH) = %+v, %v: case must not matter", e, ok)
	}
	if e, ok := ByLinkType(Raw); !ok || e.DLT != DLTRaw || e.Proto != "ip" {
		t.Errorf("LINKTYPE_RAW is %+v, want DLT_RAW (12), proto ip", e)
	}
	if _, ok := ByLinkType(127); ok {
		t.Error("ByLinkType(127) found an entry: radiotap is not in the table")
	}
	if _, ok := ByProto("auto"); ok {
		t.Error("ByProto(auto) found an entry")
	}
	if got := Protos(); len(got) != len(Table()) || got[0] != "eth" || got[len(got)-1] != "sll2" {
		t.Errorf("Protos() = %v", got)
	}
}
