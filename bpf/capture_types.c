// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The types of the capture core's ABI (capture.h, event.h), for bpf2go to
 * generate their Go declarations from: this object has no programs and is
 * never loaded. perfring/ gets the event and its flags and directions,
 * hook/ the configuration, its flags and the statistics.
 *
 * clang emits BTF only for types a variable, map or function uses; the
 * struct and the maps of capture.h already carry bpfcap_event and
 * bpfcap_config, and the variable below carries the enums, which the ABI
 * stores in plain integer fields.
 */
#include "capture.h"

char __license[] SEC("license") = "Dual BSD/GPL";

struct bpfcap_abi_enums {
	enum bpfcap_dir dir;
	enum bpfcap_event_flag event_flag;
	enum bpfcap_stat stat;
	enum bpfcap_cfg_flag cfg_flag;
};

struct bpfcap_abi_enums bpfcap_abi_enums;
