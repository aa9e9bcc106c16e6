// weft's only door to the kernel: TUN, raw IPIP and UDP sockets, readiness polling
// and batched packet I/O straight into a WebAssembly.Memory. No per-packet JS:
// each call moves a whole batch, described by a table of slot descriptors.
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
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

#define MAX_BATCH 256

// Descriptor of one packet slot, shared with the wasm side (asm/layout.ts).
typedef struct {
  uint32_t off;     // byte offset of the packet in memory
  uint32_t len;     // packet length
  uint32_t addr;    // peer IPv4 address, host order (source on receive, destination on send)
  uint16_t port;    // peer UDP port, host order
  uint8_t channel;  // output channel chosen by the fast path (0 = drop)
  uint8_t reason;   // drop reason or flags
} weft_desc;

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

// tunOpen(name) -> fd. Creates the device or attaches to an existing persistent one.
static napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char name[IFNAMSIZ];
  size_t n;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n));
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  // IFF_NAPI: packets we write are fed through NAPI, so the kernel's GRO can merge
  // consecutive TCP segments before the stack sees them.
  const char *napi = getenv("WEFT_TUN_NAPI");
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (napi && !strcmp(napi, "0") ? 0 : IFF_NAPI);
  memcpy(ifr.ifr_name, name, n < IFNAMSIZ ? n : IFNAMSIZ - 1);
  int rc = ioctl(fd, TUNSETIFF, &ifr);
  if (rc < 0 && (ifr.ifr_flags & IFF_NAPI)) {
    ifr.ifr_flags &= ~IFF_NAPI;  // older kernels: plain TUN
    rc = ioctl(fd, TUNSETIFF, &ifr);
  }
  if (rc < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "TUNSETIFF", e);
  }
  // Persistent: the device and its routes outlive the process, so a restart adopts them.
  if (ioctl(fd, TUNSETPERSIST, 1) < 0 || set_nonblock(fd) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "TUNSETPERSIST", e);
  }
  return ret_i32(env, fd);
}

// tunDelete(name): clears persistence so the device disappears with its routes.
static napi_value tun_delete(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char name[IFNAMSIZ];
  size_t n;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n));
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, n < IFNAMSIZ ? n : IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 0) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "TUNSETPERSIST 0", e);
  }
  close(fd);
  return NULL;
}

// linkSet(name, mtu, up): MTU and administrative state of an interface.
static napi_value link_set(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  char name[IFNAMSIZ];
  size_t n;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n));
  int32_t mtu = arg_i32(env, argv[1]);
  bool up = false;
  napi_get_value_bool(env, argv[2], &up);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return throw_errno(env, "socket", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, n < IFNAMSIZ ? n : IFNAMSIZ - 1);
  if (mtu > 0) {
    ifr.ifr_mtu = mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
      int e = errno;
      close(s);
      return throw_errno(env, "SIOCSIFMTU", e);
    }
  }
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
    int e = errno;
    close(s);
    return throw_errno(env, "SIOCGIFFLAGS", e);
  }
  if (up) ifr.ifr_flags |= IFF_UP; else ifr.ifr_flags &= ~IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
    int e = errno;
    close(s);
    return throw_errno(env, "SIOCSIFFLAGS", e);
  }
  close(s);
  return NULL;
}

static void set_bufs(int fd) {
  int sz = 4 << 20;
  // FORCE needs CAP_NET_ADMIN; fall back to the capped variant without it.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
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
  if (setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "IP_HDRINCL", e);
  }
  set_bufs(fd);
  return ret_i32(env, fd);
}

// udpOpen(address, port) -> fd, bound and non-blocking.
static napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char addr[64];
  size_t n;
  CHECK(napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &n));
  int port = arg_i32(env, argv[1]);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_INET, SOCK_DGRAM)", errno);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
    close(fd);
    napi_throw_type_error(env, NULL, "udpOpen: not an IPv4 address");
    return NULL;
  }
  // Never let the kernel fragment our VXLAN datagrams: oversize is the fast path's job.
  int pmtu = IP_PMTUDISC_DO;
  setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  set_bufs(fd);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind UDP", e);
  }
  return ret_i32(env, fd);
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
static napi_value recv_batch(napi_env env, napi_callback_info info) {
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
  if (max > MAX_BATCH) max = MAX_BATCH;
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
      ssize_t r = read(fd, p, cap);
      if (r < 0) {
        if (errno == EINTR) { i--; continue; }
        break;
      }
      desc[count].off = slot_base + i * slot_size + headroom;
      desc[count].len = (uint32_t)r;
      desc[count].addr = 0;
      desc[count].port = 0;
      desc[count].channel = 0;
      desc[count].reason = 0;
      count++;
    }
    return ret_i32(env, count);
  }
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in from[MAX_BATCH];
  for (uint32_t i = 0; i < max; i++) {
    iov[i].iov_base = mem + slot_base + i * slot_size + headroom;
    iov[i].iov_len = cap;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
  }
  int r;
  do r = recvmmsg(fd, msgs, max, MSG_DONTWAIT, NULL); while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ret_i32(env, 0);
    return throw_errno(env, "recvmmsg", errno);
  }
  for (int i = 0; i < r; i++) {
    desc[i].off = slot_base + i * slot_size + headroom;
    // A truncated datagram is marked by a length past the slot: the fast path drops it.
    desc[i].len = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? cap + 1 : msgs[i].msg_len;
    desc[i].addr = ntohl(from[i].sin_addr.s_addr);
    desc[i].port = ntohs(from[i].sin_port);
    desc[i].channel = 0;
    desc[i].reason = 0;
  }
  return ret_i32(env, r);
}

// sendBatch(fd, kind, memory, descOff, count, channel) -> packets the kernel took.
// Sends every descriptor whose channel matches; the rest are left for another fd.
static napi_value send_batch(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
  int kind = arg_i32(env, argv[1]);
  uint8_t *mem;
  size_t memsize;
  if (!get_memory(env, argv[2], &mem, &memsize)) return NULL;
  uint32_t desc_off = arg_u32(env, argv[3]);
  uint32_t count = arg_u32(env, argv[4]);
  uint32_t channel = arg_u32(env, argv[5]);
  if (count > MAX_BATCH) count = MAX_BATCH;
  if ((uint64_t)desc_off + sizeof(weft_desc) * count > memsize) {
    napi_throw_range_error(env, NULL, "sendBatch: descriptors outside memory");
    return NULL;
  }
  weft_desc *desc = (weft_desc *)(mem + desc_off);
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in to[MAX_BATCH];
  int n = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (desc[i].channel != channel) continue;
    if ((uint64_t)desc[i].off + desc[i].len > memsize || desc[i].len == 0) continue;
    iov[n].iov_base = mem + desc[i].off;
    iov[n].iov_len = desc[i].len;
    memset(&to[n], 0, sizeof to[n]);
    to[n].sin_family = AF_INET;
    to[n].sin_addr.s_addr = htonl(desc[i].addr);
    to[n].sin_port = htons(desc[i].port);
    n++;
  }
  int sent = 0;
  if (kind == KIND_TUN) {
    for (int i = 0; i < n; i++) {
      ssize_t w;
      do w = write(fd, iov[i].iov_base, iov[i].iov_len); while (w < 0 && errno == EINTR);
      if (w >= 0) sent++;
    }
    return ret_i32(env, sent);
  }
  for (int i = 0; i < n; i++) {
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to[i];
    msgs[i].msg_hdr.msg_namelen = sizeof to[i];
  }
  while (sent < n) {
    int r = sendmmsg(fd, msgs + sent, n - sent, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: socket buffer full. Anything else (unreachable, EMSGSIZE) hits one
      // packet: skip it and go on, the caller counts the difference as drops.
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
      msgs[sent].msg_len = 0;
      n--;
      memmove(&msgs[sent], &msgs[sent + 1], sizeof msgs[0] * (n - sent));
      continue;
    }
    sent += r;
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

// pollStart(fd, callback) -> handle; callback(status) runs when fd is readable.
static napi_value poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd = arg_i32(env, argv[0]);
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
  uv_poll_start(&p->handle, UV_READABLE, on_readable);
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

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"tunOpen", NULL, tun_open, NULL, NULL, NULL, napi_default, NULL},
      {"tunDelete", NULL, tun_delete, NULL, NULL, NULL, napi_default, NULL},
      {"linkSet", NULL, link_set, NULL, NULL, NULL, napi_default, NULL},
      {"rawOpen", NULL, raw_open, NULL, NULL, NULL, napi_default, NULL},
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, fd_close, NULL, NULL, NULL, napi_default, NULL},
      {"recvBatch", NULL, recv_batch, NULL, NULL, NULL, napi_default, NULL},
      {"sendBatch", NULL, send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"pollStart", NULL, poll_start, NULL, NULL, NULL, napi_default, NULL},
      {"pollStop", NULL, poll_stop, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
