// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The types of bpfcap.h's ABI (the record header and the configuration of
 * bpfcap_output()), for bpf2go to generate their Go declarations in
 * progcap/ from: this object has no programs and is never loaded. The
 * header's own map and variable carry both types into the BTF.
 */
#include "bpfcap.h"

char __license[] SEC("license") = "Dual BSD/GPL";
