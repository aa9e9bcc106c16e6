// weft's only door to the kernel: TUN, raw IPIP and UDP sockets, readiness polling
// and batched packet I/O straight into a WebAssembly.Memory. No per-packet JS:
// each call moves a whole batch, described by a table of slot descriptors.
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/errqueue.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/udp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <time.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define MAX_IN 256
#define MAX_OUT 4096
#define MAX_GSO_SEGS 64

// Descriptor of one packet slot, shared with the wasm side (asm/layout.ts).
typedef struct {
  uint32_t off;       // byte offset of the packet in memory
  uint32_t len;       // packet length
  uint32_t addr;      // peer IPv4 address, host order (source on receive, destination on send)
  uint16_t port;      // peer UDP port, host order
  uint8_t channel;    // output channel chosen by the fast path (0 = drop)
  uint8_t reason;     // drop reason or flags
  uint16_t gso_size;  // receive: UDP GRO segment size (0 = one datagram); send: tail length
  uint16_t flags;
  uint32_t tail;      // send: offset of the packet's last gso_size bytes (0 = none)
} weft_desc;

_Static_assert(sizeof(weft_desc) == 24, "descriptor layout is shared with asm/layout.ts");

// Send and receive scratch, reused by every batch. One per JS environment (the main
// thread and each worker thread load the addon separately), kept as instance data.
typedef struct {
  struct mmsghdr msgs[MAX_OUT];
  struct iovec iov[2 * MAX_OUT];
  struct sockaddr_in addr[MAX_OUT];
  char cmsg[MAX_OUT][CMSG_SPACE(sizeof(uint16_t))];
  // Per message of a send batch: packets in it, their size, the last one's, the sum.
  int packets_in[MAX_OUT];
  size_t seg[MAX_OUT], last[MAX_OUT], total[MAX_OUT];
} weft_scratch;

static void scratch_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  free(data);
}

static weft_scratch *scratch_of(napi_env env) {
  void *s = NULL;
  if (napi_get_instance_data(env, &s) != napi_ok || !s) {
    napi_throw_error(env, NULL, "weft native: no scratch for this thread");
    return NULL;
  }
  return s;
}

enum { KIND_TUN = 0, KIND_SOCK = 1 };

#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error(env, NULL, "weft native: N-API call failed: " #call);  \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  char codebuf[32];
  snprintf(codebuf, sizeof codebuf, "E%d", err);
  napi_create_string_utf8(env, codebuf, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, text, &error);
  napi_value errnoval;
  napi_create_int32(env, err, &errnoval);
  napi_set_named_property(env, error, "errno", errnoval);
  napi_throw(env, error);
  return NULL;
}

// Closes fd (after a failed setup step) and throws what failed with errno.
static napi_value close_and_throw(napi_env env, int fd, const char *what) {
  int e = errno;
  close(fd);
  return throw_errno(env, what, e);
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "weft native: too few arguments");
    return 0;
  }
  return 1;
}

static int32_t arg_i32(napi_env env, napi_value v) {
  int32_t x = 0;
  napi_get_value_int32(env, v, &x);
  return x;
}

static uint32_t arg_u32(napi_env env, napi_value v) {
  uint32_t x = 0;
  napi_get_value_uint32(env, v, &x);
  return x;
}

static napi_value ret_i32(napi_env env, int32_t x) {
  napi_value v;
  napi_create_int32(env, x, &v);
  return v;
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

// An interface name argument into a zeroed ifreq (at most IFNAMSIZ-1 bytes, NUL-ended).
static int arg_ifreq(napi_env env, napi_value v, struct ifreq *ifr) {
  memset(ifr, 0, sizeof *ifr);
  size_t n;
  if (napi_get_value_string_utf8(env, v, ifr->ifr_name, IFNAMSIZ, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "an interface name must be a string");
    return 0;
  }
  return 1;
}

// tunOpen(name, vnetHdr) -> fd. Creates the device or attaches to an existing
// persistent one. With vnetHdr every read and write carries a virtio_net_hdr.
static napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  bool vnet = false;
  napi_get_value_bool(env, argv[1], &vnet);
  struct ifreq ifr;
  if (!arg_ifreq(env, argv[0], &ifr)) return NULL;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) return close_and_throw(env, fd, "TUNSETIFF");
  // Persistent: the device and its routes outlive the process, so a restart adopts them.
  if (ioctl(fd, TUNSETPERSIST, 1) < 0 || set_nonblock(fd) < 0) return close_and_throw(env, fd, "TUNSETPERSIST");
  return ret_i32(env, fd);
}

// tunSetOffload(fd, flags) -> true when the kernel took them (TUN_F_CSUM, TUN_F_TSO4, ...).
static napi_value tun_set_offload(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  unsigned long flags = arg_u32(env, argv[1]);
  napi_value ok;
  napi_get_boolean(env, ioctl(fd, TUNSETOFFLOAD, flags) == 0, &ok);
  return ok;
}

// udpSetGro(fd, on) -> true when the kernel took it.
static napi_value udp_set_gro(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  bool on = false;
  napi_get_value_bool(env, argv[1], &on);
  int v = on ? 1 : 0;
  napi_value ok;
  napi_get_boolean(env, setsockopt(fd, IPPROTO_UDP, UDP_GRO, &v, sizeof v) == 0, &ok);
  return ok;
}

// udpGsoSupported(fd) -> whether UDP_SEGMENT is known to this kernel.
static napi_value udp_gso_supported(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  int v = 0;
  socklen_t l = sizeof v;
  napi_value ok;
  napi_get_boolean(env, getsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &v, &l) == 0, &ok);
  return ok;
}

// tunDelete(name): clears persistence so the device disappears with its routes.
static napi_value tun_delete(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct ifreq ifr;
  if (!arg_ifreq(env, argv[0], &ifr)) return NULL;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 0) < 0) return close_and_throw(env, fd, "TUNSETPERSIST 0");
  close(fd);
  return NULL;
}

// linkSet(name, mtu, up): MTU and administrative state of an interface.
static napi_value link_set(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  struct ifreq ifr;
  if (!arg_ifreq(env, argv[0], &ifr)) return NULL;
  int32_t mtu = arg_i32(env, argv[1]);
  bool up = false;
  napi_get_value_bool(env, argv[2], &up);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return throw_errno(env, "socket", errno);
  if (mtu > 0) {
    ifr.ifr_mtu = mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) < 0) return close_and_throw(env, s, "SIOCSIFMTU");
  }
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return close_and_throw(env, s, "SIOCGIFFLAGS");
  if (up) ifr.ifr_flags |= IFF_UP; else ifr.ifr_flags &= ~IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) return close_and_throw(env, s, "SIOCSIFFLAGS");
  close(s);
  return NULL;
}

// linkGet(name) -> {ifindex, mtu, up, driver} | null: an interface as this thread's
// network namespace sees it (ioctls on a socket here; /sys/class/net shows the
// namespace sysfs was mounted in, which a bare nsenter does not change).
static napi_value link_get(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct ifreq ifr;
  if (!arg_ifreq(env, argv[0], &ifr)) return NULL;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return throw_errno(env, "socket", errno);
  napi_value out;
  if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
    int err = errno;
    close(s);
    if (err == ENODEV) {
      napi_get_null(env, &out);
      return out;
    }
    return throw_errno(env, "SIOCGIFINDEX", err);
  }
  int32_t ifindex = ifr.ifr_ifindex;
  if (ioctl(s, SIOCGIFMTU, &ifr) < 0) return close_and_throw(env, s, "SIOCGIFMTU");
  int32_t mtu = ifr.ifr_mtu;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return close_and_throw(env, s, "SIOCGIFFLAGS");
  bool up = (ifr.ifr_flags & IFF_UP) != 0;
  // The driver's name ("tun", "veth", ...); empty for a device without ethtool.
  struct ethtool_drvinfo drv;
  memset(&drv, 0, sizeof drv);
  drv.cmd = ETHTOOL_GDRVINFO;
  ifr.ifr_data = (void *)&drv;
  if (ioctl(s, SIOCETHTOOL, &ifr) < 0) drv.driver[0] = 0;
  drv.driver[sizeof drv.driver - 1] = 0;
  close(s);
  napi_value v;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, ifindex, &v));
  CHECK(napi_set_named_property(env, out, "ifindex", v));
  CHECK(napi_create_int32(env, mtu, &v));
  CHECK(napi_set_named_property(env, out, "mtu", v));
  CHECK(napi_get_boolean(env, up, &v));
  CHECK(napi_set_named_property(env, out, "up", v));
  CHECK(napi_create_string_utf8(env, drv.driver, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, out, "driver", v));
  return out;
}

// linkEventsOpen() -> fd: a netlink socket told of every link change and every IPv4
// address change in this thread's network namespace (RTMGRP_LINK, RTMGRP_IPV4_IFADDR).
// The kernel queues them on it, so a link set down and up again between two reads is
// still seen (reading the flags is not).
static napi_value link_events_open(napi_env env, napi_callback_info info) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", errno);
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return close_and_throw(env, fd, "bind(RTMGRP_LINK)");
  // Every interface's changes come here, pods' veths among them: dozens of pods started
  // or stopped at once announce ~1 MB within a second, past the default queue (~200 KB).
  // 8 MiB (root may go past rmem_max) holds hundreds; an overflow is still reported.
  int size = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return ret_i32(env, fd);
}

#define LINK_EVENT_NAMES 4

// The NUL-ended string attribute `type` of a netlink message's attributes, or NULL.
static const char *rta_string(struct rtattr *a, int len, unsigned short type) {
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type != type || RTA_PAYLOAD(a) == 0) continue;
    const char *s = RTA_DATA(a);
    return strnlen(s, RTA_PAYLOAD(a)) < RTA_PAYLOAD(a) ? s : NULL;
  }
  return NULL;
}

// linkEventsRead(fd, names) -> {overflow, links: [{changes, down, addressesRemoved}]}:
// drains what is queued (at most 4096 reads a call) and sums it up for each of the links
// named (at most 4), in their order: how many link changes, whether one showed it down
// or deleted, how many IPv4 addresses were removed from it; and whether the queue
// overflowed meanwhile (ENOBUFS: changes were lost, so the caller cannot know).
static napi_value link_events_read(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  uint32_t count = 0;
  bool is_array = false;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &count) != napi_ok || count > LINK_EVENT_NAMES) {
    napi_throw_type_error(env, NULL, "linkEventsRead: names must be an array of at most 4 interface names");
    return NULL;
  }
  struct ifreq names[LINK_EVENT_NAMES];
  int32_t changes[LINK_EVENT_NAMES] = {0}, removed[LINK_EVENT_NAMES] = {0};
  bool down[LINK_EVENT_NAMES] = {false};
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    CHECK(napi_get_element(env, argv[1], i, &v));
    if (!arg_ifreq(env, v, &names[i])) return NULL;
  }
  static __thread char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
  bool overflow = false;
  for (int reads = 0; reads < 4096; reads++) {
    ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        overflow = true;
        continue;
      }
      return throw_errno(env, "recv(netlink)", errno);
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)got); h = NLMSG_NEXT(h, got)) {
      const char *name = NULL;
      bool link = h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK, is_down = false;
      if (link && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg))) {
        struct ifinfomsg *ifi = NLMSG_DATA(h);
        name = rta_string(IFLA_RTA(ifi), (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi)), IFLA_IFNAME);
        is_down = h->nlmsg_type == RTM_DELLINK || !(ifi->ifi_flags & IFF_UP);
      } else if (h->nlmsg_type == RTM_DELADDR && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifaddrmsg))) {
        struct ifaddrmsg *ifa = NLMSG_DATA(h);
        // An IPv4 address's label is its device's name (or name:alias).
        name = rta_string(IFA_RTA(ifa), (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifa)), IFA_LABEL);
      }
      if (!name) continue;
      for (uint32_t i = 0; i < count; i++) {
        size_t n = strlen(names[i].ifr_name);
        if (strncmp(name, names[i].ifr_name, n) != 0 || (name[n] != 0 && !(name[n] == ':' && !link))) continue;
        if (link) {
          changes[i]++;
          if (is_down) down[i] = true;
        } else {
          removed[i]++;
        }
      }
    }
  }
  napi_value out, links, v;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_get_boolean(env, overflow, &v));
  CHECK(napi_set_named_property(env, out, "overflow", v));
  CHECK(napi_create_array_with_length(env, count, &links));
  for (uint32_t i = 0; i < count; i++) {
    napi_value l;
    CHECK(napi_create_object(env, &l));
    CHECK(napi_create_int32(env, changes[i], &v));
    CHECK(napi_set_named_property(env, l, "changes", v));
    CHECK(napi_get_boolean(env, down[i], &v));
    CHECK(napi_set_named_property(env, l, "down", v));
    CHECK(napi_create_int32(env, removed[i], &v));
    CHECK(napi_set_named_property(env, l, "addressesRemoved", v));
    CHECK(napi_set_element(env, links, i, l));
  }
  CHECK(napi_set_named_property(env, out, "links", links));
  return out;
}

static void set_bufs(int fd) {
  int sz = 4 << 20;
  // FORCE needs CAP_NET_ADMIN; fall back to the capped variant without it.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

// A tunnel socket takes the network's errors about what it sent (ICMP fragmentation-
// needed with a smaller path MTU, unreachables, the kernel's own refusals): queued for
// socketErrors (IP_RECVERR), and signalled with POLLPRI beside POLLERR
// (SO_SELECT_ERR_QUEUE), so a poll watching for it is not ended by them (pollStart).
static void want_errors(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &one, sizeof one);
}

// rawOpen(protocol) -> fd. Raw IPv4 socket: receives whole packets of that protocol
// (outer header included) and sends with IP_HDRINCL (we write the outer header).
static napi_value raw_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int proto = arg_i32(env, argv[0]);
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) return throw_errno(env, "socket(AF_INET, SOCK_RAW)", errno);
  int one = 1;
  if (setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) < 0) return close_and_throw(env, fd, "IP_HDRINCL");
  // Without it a raw socket drops ICMP errors once the kernel has noted the path MTU.
  want_errors(fd);
  set_bufs(fd);
  return ret_i32(env, fd);
}

// socketErrors(fd) -> [[address (host order), mtu, errno], ...]: drains the socket's error
// queue (IP_RECVERR). address is the destination of what caused the error; mtu is the
// path MTU an ICMP fragmentation-needed (or the kernel itself) gave for it, 0 otherwise.
static napi_value socket_errors(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  napi_value out;
  napi_create_array(env, &out);
  uint32_t n = 0;
  for (int guard = 0; guard < 256; guard++) {
    uint8_t data[64];
    char control[256];
    struct sockaddr_in from;
    struct iovec iov = {data, sizeof data};
    struct msghdr m = {0};
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    ssize_t r;
    do r = recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT); while (r < 0 && errno == EINTR);
    if (r < 0) break;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR) continue;
      struct sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(c), sizeof ee);
      napi_value row, v;
      napi_create_array_with_length(env, 3, &row);
      napi_create_uint32(env, m.msg_namelen >= sizeof from ? ntohl(from.sin_addr.s_addr) : 0, &v);
      napi_set_element(env, row, 0, v);
      napi_create_uint32(env, ee.ee_errno == EMSGSIZE ? ee.ee_info : 0, &v);
      napi_set_element(env, row, 1, v);
      napi_create_uint32(env, ee.ee_errno, &v);
      napi_set_element(env, row, 2, v);
      napi_set_element(env, out, n++, row);
    }
  }
  return out;
}

// An IPv4 address argument (with a port) as a sockaddr_in; 0 after throwing a
// TypeError that names fn when it is not one.
static int arg_sockaddr(napi_env env, napi_value v, int port, struct sockaddr_in *sa, const char *fn) {
  char addr[64];
  size_t n;
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (napi_get_value_string_utf8(env, v, addr, sizeof addr, &n) != napi_ok || inet_pton(AF_INET, addr, &sa->sin_addr) != 1) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s: not an IPv4 address", fn);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

// udpOpen(address, port) -> fd, bound and non-blocking.
static napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  struct sockaddr_in sa;
  if (!arg_sockaddr(env, argv[0], arg_i32(env, argv[1]), &sa, "udpOpen")) return NULL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_INET, SOCK_DGRAM)", errno);
  // Never let the kernel fragment our VXLAN datagrams: oversize is the fast path's job.
  int pmtu = IP_PMTUDISC_DO;
  setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  // A datagram over the path MTU (refused here, or dropped on the way with an ICMP
  // fragmentation-needed) is queued as an error with that MTU.
  want_errors(fd);
  set_bufs(fd);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return close_and_throw(env, fd, "bind UDP");
  return ret_i32(env, fd);
}

// tcpSocket(address, port) -> fd: a non-blocking TCP socket bound to address:port (port
// 0: any, for connecting; otherwise SO_REUSEADDR, for a listener node then listens on).
// Made here, not by node, so TCP MD5 keys can be set before the first SYN.
static napi_value tcp_socket(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int port = arg_i32(env, argv[1]);
  struct sockaddr_in sa;
  if (!arg_sockaddr(env, argv[0], port, &sa, "tcpSocket")) return NULL;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_INET, SOCK_STREAM)", errno);
  if (port != 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return close_and_throw(env, fd, "bind TCP");
  return ret_i32(env, fd);
}

// tcpMd5(fd, peer, key): TCP MD5 signatures (RFC 2385) on segments to and from peer
// (BGP passwords); an empty key removes it. On a listener it covers accepted sockets.
static napi_value tcp_md5(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  char key[TCP_MD5SIG_MAXKEYLEN + 2];
  size_t keylen;
  CHECK(napi_get_value_string_utf8(env, argv[2], key, sizeof key, &keylen));
  if (keylen > TCP_MD5SIG_MAXKEYLEN) {
    napi_throw_range_error(env, NULL, "tcpMd5: a key is at most 80 bytes");
    return NULL;
  }
  struct tcp_md5sig sig;
  memset(&sig, 0, sizeof sig);
  if (!arg_sockaddr(env, argv[1], 0, (struct sockaddr_in *)&sig.tcpm_addr, "tcpMd5")) return NULL;
  sig.tcpm_keylen = (uint16_t)keylen;
  memcpy(sig.tcpm_key, key, keylen);
  if (setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof sig) < 0) {
    // Removing a key that was never set is fine.
    if (keylen == 0 && errno == ENOENT) return NULL;
    return throw_errno(env, "setsockopt(TCP_MD5SIG)", errno);
  }
  return NULL;
}

// tcpTtlSecurity(fd, hops): GTSM (RFC 5082) for a BGP session with a peer hops away:
// send with TTL 255 and drop segments that arrive with less than 256 - hops; hops 0
// takes it off (the system's TTL, no minimum).
static napi_value tcp_ttl_security(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  int hops = arg_i32(env, argv[1]);
  if (hops < 0 || hops > 255) {
    napi_throw_range_error(env, NULL, "tcpTtlSecurity: hops is 0 to 255");
    return NULL;
  }
  int ttl = hops ? 255 : -1; // -1: back to the system's default TTL
  int minttl = hops ? 256 - hops : 0;
  if (setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) < 0) return throw_errno(env, "setsockopt(IP_TTL)", errno);
  if (setsockopt(fd, IPPROTO_IP, IP_MINTTL, &minttl, sizeof minttl) < 0) return throw_errno(env, "setsockopt(IP_MINTTL)", errno);
  return NULL;
}

static napi_value fd_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  close(arg_i32(env, argv[0]));
  return NULL;
}

static int get_memory(napi_env env, napi_value buf, uint8_t **base, size_t *size) {
  void *data;
  if (napi_get_arraybuffer_info(env, buf, &data, size) != napi_ok) {
    napi_throw_type_error(env, NULL, "weft native: memory must be an ArrayBuffer");
    return 0;
  }
  *base = data;
  return 1;
}

// recvBatch(fd, kind, memory, descOff, slotBase, slotSize, headroom, max) -> count.
// Fills up to max slots; slot i holds its packet at slotBase + i*slotSize + headroom.
// On a UDP socket with UDP_GRO, one slot may hold several datagrams of gso_size bytes.
static napi_value recv_batch(napi_env env, napi_callback_info info) {
  weft_scratch *S = scratch_of(env);
  if (!S) return NULL;
  napi_value argv[8];
  if (!get_args(env, info, 8, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  int kind = arg_i32(env, argv[1]);
  uint8_t *mem;
  size_t memsize;
  if (!get_memory(env, argv[2], &mem, &memsize)) return NULL;
  uint32_t desc_off = arg_u32(env, argv[3]);
  uint32_t slot_base = arg_u32(env, argv[4]);
  uint32_t slot_size = arg_u32(env, argv[5]);
  uint32_t headroom = arg_u32(env, argv[6]);
  uint32_t max = arg_u32(env, argv[7]);
  if (max > MAX_IN) max = MAX_IN;
  if (headroom >= slot_size || (uint64_t)slot_base + (uint64_t)slot_size * max > memsize ||
      (uint64_t)desc_off + sizeof(weft_desc) * max > memsize) {
    napi_throw_range_error(env, NULL, "recvBatch: slots or descriptors outside memory");
    return NULL;
  }
  weft_desc *desc = (weft_desc *)(mem + desc_off);
  uint32_t cap = slot_size - headroom;
  int count = 0;
  if (kind == KIND_TUN) {
    for (uint32_t i = 0; i < max; i++) {
      uint8_t *p = mem + slot_base + i * slot_size + headroom;
      ssize_t r;
      do r = read(fd, p, cap); while (r < 0 && errno == EINTR);
      if (r < 0) break;
      memset(&desc[count], 0, sizeof desc[count]);
      desc[count].off = slot_base + i * slot_size + headroom;
      desc[count].len = (uint32_t)r;
      count++;
    }
    return ret_i32(env, count);
  }
  for (uint32_t i = 0; i < max; i++) {
    S->iov[i].iov_base = mem + slot_base + i * slot_size + headroom;
    S->iov[i].iov_len = cap;
    memset(&S->msgs[i], 0, sizeof S->msgs[i]);
    S->msgs[i].msg_hdr.msg_iov = &S->iov[i];
    S->msgs[i].msg_hdr.msg_iovlen = 1;
    S->msgs[i].msg_hdr.msg_name = &S->addr[i];
    S->msgs[i].msg_hdr.msg_namelen = sizeof S->addr[i];
    S->msgs[i].msg_hdr.msg_control = S->cmsg[i];
    S->msgs[i].msg_hdr.msg_controllen = sizeof S->cmsg[i];
  }
  int r;
  do r = recvmmsg(fd, S->msgs, max, MSG_DONTWAIT, NULL); while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ret_i32(env, 0);
    // A call this code got wrong is ours to throw. Any other error is one the network
    // reported about what we sent (IP_RECVERR: whatever errno the kernel made of an ICMP
    // error, or of its own refusal): -1, and the caller reads it with socketErrors.
    if (errno == EBADF || errno == EFAULT || errno == EINVAL || errno == ENOTSOCK || errno == ENOMEM)
      return throw_errno(env, "recvmmsg", errno);
    return ret_i32(env, -1);
  }
  for (int i = 0; i < r; i++) {
    memset(&desc[i], 0, sizeof desc[i]);
    desc[i].off = slot_base + i * slot_size + headroom;
    // A truncated datagram is marked by a length past the slot: the fast path drops it.
    desc[i].len = (S->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? cap + 1 : S->msgs[i].msg_len;
    desc[i].addr = ntohl(S->addr[i].sin_addr.s_addr);
    desc[i].port = ntohs(S->addr[i].sin_port);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&S->msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&S->msgs[i].msg_hdr, c)) {
      if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
        uint16_t gso;
        memcpy(&gso, CMSG_DATA(c), sizeof gso);
        desc[i].gso_size = gso;
      }
    }
  }
  return ret_i32(env, r);
}

// The iovecs of one outgoing packet (1, or 2 with a tail) into iov; 0 when it is
// empty or reaches outside memory.
static int packet_iov(const weft_desc *d, uint8_t *mem, size_t memsize, struct iovec *iov) {
  uint32_t tail_len = d->tail ? d->gso_size : 0;
  if (d->len == 0 || tail_len > d->len) return 0;
  uint32_t head = d->len - tail_len;
  if ((uint64_t)d->off + head > memsize || (uint64_t)d->tail + tail_len > memsize) return 0;
  iov[0].iov_base = mem + d->off;
  iov[0].iov_len = head;
  if (!tail_len) return 1;
  iov[1].iov_base = mem + d->tail;
  iov[1].iov_len = tail_len;
  return 2;
}

// sendBatch(fd, kind, memory, descOff, count, channel, gso) -> packets the kernel took.
// Sends every descriptor whose channel matches; the rest are left for another fd.
// With gso (UDP), consecutive datagrams to the same peer and of the same size (the
// last may be shorter) go as one sendmsg with UDP_SEGMENT: one trip through the stack.
static napi_value send_batch(napi_env env, napi_callback_info info) {
  weft_scratch *S = scratch_of(env);
  if (!S) return NULL;
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  int kind = arg_i32(env, argv[1]);
  uint8_t *mem;
  size_t memsize;
  if (!get_memory(env, argv[2], &mem, &memsize)) return NULL;
  uint32_t desc_off = arg_u32(env, argv[3]);
  uint32_t count = arg_u32(env, argv[4]);
  uint32_t channel = arg_u32(env, argv[5]);
  bool gso = false;
  napi_get_value_bool(env, argv[6], &gso);
  if (count > MAX_OUT) count = MAX_OUT;
  if ((uint64_t)desc_off + sizeof(weft_desc) * count > memsize) {
    napi_throw_range_error(env, NULL, "sendBatch: descriptors outside memory");
    return NULL;
  }
  weft_desc *desc = (weft_desc *)(mem + desc_off);
  int sent = 0;
  if (kind == KIND_TUN) {
    for (uint32_t i = 0; i < count; i++) {
      if (desc[i].channel != channel) continue;
      int n = packet_iov(&desc[i], mem, memsize, S->iov);
      if (n == 0) continue;
      ssize_t w;
      do w = writev(fd, S->iov, n); while (w < 0 && errno == EINTR);
      if (w >= 0) sent++;
    }
    return ret_i32(env, sent);
  }
  // Build one message per packet, or per GSO train: consecutive packets to the same
  // peer, all of the first one's size but the last, which may be shorter.
  int nmsg = 0, niov = 0;
  int *packets_in = S->packets_in;
  size_t *seg = S->seg, *last = S->last, *total = S->total;
  for (uint32_t i = 0; i < count; i++) {
    if (desc[i].channel != channel) continue;
    int n = packet_iov(&desc[i], mem, memsize, &S->iov[niov]);
    if (n == 0) continue;
    size_t len = desc[i].len;
    int k = nmsg - 1;
    if (gso && k >= 0 && packets_in[k] < MAX_GSO_SEGS && last[k] == seg[k] && len <= seg[k] &&
        total[k] + len <= 65000 && S->addr[k].sin_addr.s_addr == htonl(desc[i].addr) &&
        S->addr[k].sin_port == htons(desc[i].port)) {
      S->msgs[k].msg_hdr.msg_iovlen += n;
      packets_in[k]++;
      last[k] = len;
      total[k] += len;
      niov += n;
      continue;
    }
    struct msghdr *m = &S->msgs[nmsg].msg_hdr;
    memset(&S->msgs[nmsg], 0, sizeof S->msgs[nmsg]);
    memset(&S->addr[nmsg], 0, sizeof S->addr[nmsg]);
    S->addr[nmsg].sin_family = AF_INET;
    S->addr[nmsg].sin_addr.s_addr = htonl(desc[i].addr);
    S->addr[nmsg].sin_port = htons(desc[i].port);
    m->msg_iov = &S->iov[niov];
    m->msg_iovlen = n;
    m->msg_name = &S->addr[nmsg];
    m->msg_namelen = sizeof S->addr[nmsg];
    packets_in[nmsg] = 1;
    seg[nmsg] = last[nmsg] = total[nmsg] = len;
    nmsg++;
    niov += n;
  }
  if (gso) {
    for (int k = 0; k < nmsg; k++) {
      struct msghdr *m = &S->msgs[k].msg_hdr;
      if (packets_in[k] < 2) continue;
      m->msg_control = S->cmsg[k];
      m->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
      struct cmsghdr *c = CMSG_FIRSTHDR(m);
      c->cmsg_level = IPPROTO_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t size = (uint16_t)seg[k];
      memcpy(CMSG_DATA(c), &size, sizeof size);
    }
  }
  int done = 0, retried = -1;
  while (done < nmsg) {
    int r = sendmmsg(fd, S->msgs + done, nmsg - done, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: socket buffer full. Anything else (unreachable, EMSGSIZE) hits one
      // message. It may be an ICMP error about an earlier packet, to anywhere, left
      // pending on the socket (IP_RECVERR) and taken by this send: the same message
      // goes again once; failing again, it is its own, so skip it and go on. The
      // caller counts what was not sent as drops.
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
      if (retried != done) {
        retried = done;
        continue;
      }
      done++;
      continue;
    }
    for (int k = done; k < done + r; k++) sent += packets_in[k];
    done += r;
  }
  return ret_i32(env, sent);
}

// --- readiness polling -------------------------------------------------------

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context ctx;
  int closing;
} weft_poll;

static void on_poll_closed(uv_handle_t *h) {
  free(h->data);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  weft_poll *p = h->data;
  if (p->closing) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, global, result, st;
  napi_get_reference_value(env, p->callback, &cb);
  napi_get_global(env, &global);
  napi_create_int32(env, status, &st);
  // make_callback: the JS side runs with microtasks drained, as for any I/O callback.
  napi_make_callback(env, p->ctx, global, cb, 1, &st, &result);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
  (void)events;
}

static void poll_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)data; (void)hint;
}

// pollStart(fd, callback, errorQueue) -> handle; callback(status) runs when fd is
// readable. errorQueue: a socket with SO_SELECT_ERR_QUEUE (an error queued or pending is
// readable too). libuv stops a poll on POLLERR unless POLLPRI comes with it, which such a
// socket gives when its interest includes it; without this, the first ICMP error about
// what we sent would end receiving from that socket.
static napi_value poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  bool error_queue = false;
  napi_get_value_bool(env, argv[2], &error_queue);
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  weft_poll *p = calloc(1, sizeof *p);
  p->env = env;
  CHECK(napi_create_reference(env, argv[1], 1, &p->callback));
  napi_value name;
  napi_create_string_utf8(env, "weft.poll", NAPI_AUTO_LENGTH, &name);
  CHECK(napi_async_init(env, NULL, name, &p->ctx));
  if (uv_poll_init(loop, &p->handle, fd) != 0) {
    free(p);
    napi_throw_error(env, NULL, "uv_poll_init failed");
    return NULL;
  }
  p->handle.data = p;
  uv_poll_start(&p->handle, error_queue ? UV_READABLE | UV_PRIORITIZED : UV_READABLE, on_readable);
  napi_value ext;
  CHECK(napi_create_external(env, p, poll_finalize, NULL, &ext));
  return ext;
}

static napi_value poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  weft_poll *p;
  CHECK(napi_get_value_external(env, argv[0], (void **)&p));
  if (p->closing) return NULL;
  p->closing = 1;
  uv_poll_stop(&p->handle);
  napi_delete_reference(env, p->callback);
  napi_async_destroy(env, p->ctx);
  uv_close((uv_handle_t *)&p->handle, on_poll_closed);
  return NULL;
}

// spinReady(fds Int32Array, budgetNs) -> index of the first readable fd, or -1 once
// budgetNs have passed. Between checks it yields the CPU to anything runnable, so a
// busy-polling node never holds a CPU another task is waiting for.
static napi_value spin_ready(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  napi_typedarray_type type;
  size_t len, offset;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[0], &type, &len, &data, &ab, &offset) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, NULL, "spinReady: fds must be an Int32Array");
    return NULL;
  }
  uint32_t budget = arg_u32(env, argv[1]);
  struct pollfd pf[16];
  if (len > 16) len = 16;
  for (size_t i = 0; i < len; i++) {
    pf[i].fd = ((int32_t *)data)[i];
    // POLLPRI: a tunnel socket's queued error (SO_SELECT_ERR_QUEUE), for its reader to drain;
    // a TUN's POLLERR (its device gone) comes without it and is left to epoll.
    pf[i].events = POLLIN | POLLPRI;
  }
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (poll(pf, len, 0) > 0)
      for (size_t i = 0; i < len; i++)
        if (pf[i].revents & (POLLIN | POLLPRI)) return ret_i32(env, (int32_t)i);
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (int64_t)(now.tv_sec - start.tv_sec) * 1000000000 + (now.tv_nsec - start.tv_nsec);
    if (ns >= budget) return ret_i32(env, -1);
    sched_yield();
  }
}

// Byte offsets of weft_desc's fields, so a test can hold them against asm/layout.ts.
static napi_value desc_layout(napi_env env, napi_callback_info info) {
  (void)info;
  static const struct { const char *name; size_t at; } fields[] = {
      {"size", sizeof(weft_desc)},
      {"off", offsetof(weft_desc, off)},
      {"len", offsetof(weft_desc, len)},
      {"addr", offsetof(weft_desc, addr)},
      {"port", offsetof(weft_desc, port)},
      {"channel", offsetof(weft_desc, channel)},
      {"reason", offsetof(weft_desc, reason)},
      {"gso", offsetof(weft_desc, gso_size)},
      {"flags", offsetof(weft_desc, flags)},
      {"tail", offsetof(weft_desc, tail)},
  };
  napi_value obj, v;
  napi_create_object(env, &obj);
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    napi_create_uint32(env, (uint32_t)fields[i].at, &v);
    napi_set_named_property(env, obj, fields[i].name, v);
  }
  return obj;
}

static napi_value init(napi_env env, napi_value exports) {
  weft_scratch *scratch = calloc(1, sizeof *scratch);
  if (!scratch || napi_set_instance_data(env, scratch, scratch_finalize, NULL) != napi_ok) {
    free(scratch);
    napi_throw_error(env, NULL, "weft native: cannot allocate batch scratch");
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"tunOpen", NULL, tun_open, NULL, NULL, NULL, napi_default, NULL},
      {"tunDelete", NULL, tun_delete, NULL, NULL, NULL, napi_default, NULL},
      {"tunSetOffload", NULL, tun_set_offload, NULL, NULL, NULL, napi_default, NULL},
      {"udpSetGro", NULL, udp_set_gro, NULL, NULL, NULL, napi_default, NULL},
      {"udpGsoSupported", NULL, udp_gso_supported, NULL, NULL, NULL, napi_default, NULL},
      {"linkSet", NULL, link_set, NULL, NULL, NULL, napi_default, NULL},
      {"linkGet", NULL, link_get, NULL, NULL, NULL, napi_default, NULL},
      {"linkEventsOpen", NULL, link_events_open, NULL, NULL, NULL, napi_default, NULL},
      {"linkEventsRead", NULL, link_events_read, NULL, NULL, NULL, napi_default, NULL},
      {"rawOpen", NULL, raw_open, NULL, NULL, NULL, napi_default, NULL},
      {"socketErrors", NULL, socket_errors, NULL, NULL, NULL, napi_default, NULL},
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, fd_close, NULL, NULL, NULL, napi_default, NULL},
      {"tcpSocket", NULL, tcp_socket, NULL, NULL, NULL, napi_default, NULL},
      {"tcpMd5", NULL, tcp_md5, NULL, NULL, NULL, napi_default, NULL},
      {"tcpTtlSecurity", NULL, tcp_ttl_security, NULL, NULL, NULL, napi_default, NULL},
      {"recvBatch", NULL, recv_batch, NULL, NULL, NULL, napi_default, NULL},
      {"sendBatch", NULL, send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"pollStart", NULL, poll_start, NULL, NULL, NULL, napi_default, NULL},
      {"pollStop", NULL, poll_stop, NULL, NULL, NULL, napi_default, NULL},
      {"spinReady", NULL, spin_ready, NULL, NULL, NULL, napi_default, NULL},
      {"descLayout", NULL, desc_layout, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
