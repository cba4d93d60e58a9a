// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * owner.c: learns which process owns which socket, for the capture
 * programs' attribution and --pid/--comm/--cgroup filters (capture.h's
 * bpfcap_owners). Attached to the root cgroup (v2) for one capture
 * session, on the socket calls that run in the calling process's context:
 * socket creation, connect and sendmsg with an address. Every program
 * allows the call (returns 1).
 */
#include "capture.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/*
 * Records the current task as the owner of the socket with cookie. A
 * socket's owner is mostly the one already recorded (every sendmsg of a
 * flood asks again): then it costs a lookup and the pid and cgroup reads,
 * not the comm read and the update of the LRU hash (660 ns per sendmsg
 * under a UDP flood, about 310 ns without them; kernel run-time
 * statistics). A recorded owner keeps its comm while its process and
 * cgroup stay: a thread that renamed itself, or an exec keeping the
 * socket, shows the name the socket was first used under.
 */
static __always_inline void learn(__u64 cookie)
{
	struct bpfcap_owner o = {}, *known;

	if (!cookie)
		return;
	o.pid = bpf_get_current_pid_tgid() >> 32;
	o.cgroup = bpf_get_current_cgroup_id();
	known = bpf_map_lookup_elem(&bpfcap_owners, &cookie);
	if (known && known->pid == o.pid && known->cgroup == o.cgroup)
		return;
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	bpf_map_update_elem(&bpfcap_owners, &cookie, &o, BPF_ANY);
}

SEC("cgroup/sock_create")
int bpfcap_owner_create(struct bpf_sock *sk)
{
	learn(bpf_get_socket_cookie(sk));
	return 1;
}

SEC("cgroup/connect4")
int bpfcap_owner_connect4(struct bpf_sock_addr *ctx)
{
	learn(bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/connect6")
int bpfcap_owner_connect6(struct bpf_sock_addr *ctx)
{
	learn(bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/sendmsg4")
int bpfcap_owner_sendmsg4(struct bpf_sock_addr *ctx)
{
	learn(bpf_get_socket_cookie(ctx));
	return 1;
}

SEC("cgroup/sendmsg6")
int bpfcap_owner_sendmsg6(struct bpf_sock_addr *ctx)
{
	learn(bpf_get_socket_cookie(ctx));
	return 1;
}
