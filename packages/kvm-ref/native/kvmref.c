/*
 * kvmref: drives the machine's real /dev/kvm for kvmts's differential tests.
 *
 * A line protocol on stdin/stdout; every request line gets exactly one reply line (image runs
 * reply with several `J` lines, then one `E` line). Numbers are lowercase hex without 0x unless
 * said otherwise; byte buffers are hex in memory order, `-` when empty.
 *
 *   S <rflags> <rax> ... <r15> <code> <scratch>      run a snippet at CPL3 (see snippet_vm_init)
 *     -> R <kind> <rip> <rflags> <rax> ... <r15> <scratch-after>
 *   O <name> <path>                                  open(path, O_RDWR)           -> = <ret>
 *   C <fdref>                                        close                        -> = <ret>
 *   M <name> <size>                                  anonymous mmap (zeroed)      -> = 0
 *   F <name> <fdref> <size> <offset>                 mmap of an fd, shared        -> = <ret>
 *   X <map> <off> <len>                              read bytes of a map          -> = 0 <hex>
 *   W <map> <off> <hex>                              write bytes into a map       -> = 0
 *   Q <dest> <fdref> <req> i <value>                 ioctl with an integer arg    -> = <ret>
 *   Q <dest> <fdref> <req> p <map> <delta>           ioctl with a pointer into a map -> = <ret>
 *   Q <dest> <fdref> <req> b <hex> [<off>:<map>:<delta> ...]
 *                                                    ioctl on a buffer, patched with pointers
 *                                                    -> = <ret> <buffer-after>
 *   I <image> <mem> <load> <entry> <maxexits> <timeout-ms> [<reg>=<value> ...]
 *                                                    run an image (see cmd_image)
 *     -> J <json row> ... then E <serial bytes>
 *
 * <ret> is a signed decimal: the syscall's result, or -errno. <dest> names the fd an ioctl
 * returns (CREATE_VM, CREATE_VCPU), or is `-`. <fdref> is a name, or `#<decimal>` for a raw fd
 * number (to test EBADF). Pointers never appear in replies, so replies are the same every run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_NAMES 64

static void fail(const char *msg) {
  printf("! %s\n", msg);
  fflush(stdout);
  exit(2);
}

/* ---- hex ---------------------------------------------------------------------------------- */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes `s` into a fresh buffer; `-` is empty. Returns NULL on bad hex. */
static uint8_t *unhex(const char *s, size_t *len) {
  size_t n = strcmp(s, "-") == 0 ? 0 : strlen(s);
  if (n % 2) return NULL;
  uint8_t *b = calloc(n / 2 + 1, 1);
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) { free(b); return NULL; }
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  *len = n / 2;
  return b;
}

static void puthex(const uint8_t *b, size_t n) {
  if (n == 0) { fputs("-", stdout); return; }
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

static uint64_t num(const char *s) { return strtoull(s, NULL, 16); }

/* ---- named fds and maps (ioctl scripts) --------------------------------------------------- */

struct named { char name[32]; long value; size_t size; };
static struct named fds[MAX_NAMES], maps[MAX_NAMES];

static struct named *lookup(struct named *t, const char *name, int create) {
  for (int i = 0; i < MAX_NAMES; i++) if (t[i].name[0] && strcmp(t[i].name, name) == 0) return &t[i];
  if (!create) return NULL;
  for (int i = 0; i < MAX_NAMES; i++) {
    if (!t[i].name[0]) { snprintf(t[i].name, sizeof t[i].name, "%s", name); return &t[i]; }
  }
  return NULL;
}

/* An fd reference: `#<n>` is the raw number n, anything else a name (unknown names are -1). */
static int fdref(const char *s) {
  if (s[0] == '#') return (int)strtol(s + 1, NULL, 10);
  struct named *n = lookup(fds, s, 0);
  return n ? (int)n->value : -1;
}

static void set_fd(const char *dest, long ret) {
  if (strcmp(dest, "-") == 0 || ret < 0) return;
  struct named *n = lookup(fds, dest, 1);
  if (n) n->value = ret;
}

static void cmd_ioctl(char **tok, int ntok) {
  if (ntok < 6) fail("Q needs <dest> <fdref> <req> <kind> <arg>");
  int fd = fdref(tok[2]);
  unsigned long req = (unsigned long)num(tok[3]);
  const char *kind = tok[4];
  long ret;
  if (strcmp(kind, "i") == 0) {
    ret = ioctl(fd, req, (unsigned long)strtoull(tok[5], NULL, 16));
    ret = ret < 0 ? -errno : ret;
    set_fd(tok[1], ret);
    printf("= %ld\n", ret);
  } else if (strcmp(kind, "p") == 0) {
    struct named *m = ntok > 6 ? lookup(maps, tok[5], 0) : NULL;
    if (!m) fail("Q p: unknown map");
    ret = ioctl(fd, req, (char *)m->value + num(tok[6]));
    ret = ret < 0 ? -errno : ret;
    set_fd(tok[1], ret);
    printf("= %ld\n", ret);
  } else if (strcmp(kind, "b") == 0) {
    size_t len;
    uint8_t *buf = unhex(tok[5], &len);
    if (!buf) fail("Q b: bad hex");
    for (int i = 6; i < ntok; i++) {
      char mapname[32];
      unsigned long off, delta;
      if (sscanf(tok[i], "%lx:%31[^:]:%lx", &off, mapname, &delta) != 3) fail("Q b: bad patch");
      struct named *m = lookup(maps, mapname, 0);
      if (!m || off + 8 > len) fail("Q b: bad patch target");
      uint64_t p = (uint64_t)m->value + delta;
      memcpy(buf + off, &p, 8);
    }
    ret = ioctl(fd, req, len ? buf : NULL);
    ret = ret < 0 ? -errno : ret;
    set_fd(tok[1], ret);
    /* Patched pointers are host addresses: put the request's bytes back so replies stay stable. */
    size_t in_len;
    uint8_t *orig = unhex(tok[5], &in_len);
    for (int i = 6; i < ntok; i++) {
      unsigned long off = strtoul(tok[i], NULL, 16);
      memcpy(buf + off, orig + off, 8);
    }
    printf("= %ld ", ret);
    puthex(buf, len);
    putchar('\n');
    free(orig);
    free(buf);
  } else {
    fail("Q: unknown argument kind");
  }
}

static void cmd_mmap_anon(char **tok, int ntok) {
  if (ntok < 3) fail("M needs <name> <size>");
  size_t size = num(tok[2]);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) { printf("= %d\n", -errno); return; }
  struct named *m = lookup(maps, tok[1], 1);
  if (!m) fail("too many maps");
  m->value = (long)p;
  m->size = size;
  printf("= 0\n");
}

static void cmd_mmap_fd(char **tok, int ntok) {
  if (ntok < 5) fail("F needs <name> <fdref> <size> <offset>");
  size_t size = num(tok[3]);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fdref(tok[2]), (off_t)num(tok[4]));
  if (p == MAP_FAILED) { printf("= %d\n", -errno); return; }
  struct named *m = lookup(maps, tok[1], 1);
  if (!m) fail("too many maps");
  m->value = (long)p;
  m->size = size;
  printf("= 0\n");
}

static struct named *map_range(const char *name, size_t off, size_t len) {
  struct named *m = lookup(maps, name, 0);
  if (!m || off + len > m->size) fail("map access out of range");
  return m;
}

/* ---- a VM for snippets -------------------------------------------------------------------- */

/* Guest-physical layout of the snippet VM (DESIGN.md: CPL3 long mode so the CPU runs it natively). */
#define SNIP_MEM       0x400000ul
#define SNIP_PML4      0x1000ul
#define SNIP_PDPT      0x2000ul
#define SNIP_PD        0x3000ul
#define SNIP_GDT       0x5000ul
#define SNIP_TSS       0x6000ul
#define SNIP_CODE      0x10000ul
#define SNIP_CODE_MAX  0x8000ul
#define SNIP_SCRATCH   0x20000ul
#define SNIP_SCRATCH_MAX 0x1000ul
#define SNIP_FS_BASE   (SNIP_SCRATCH + 0x400)
#define SNIP_GS_BASE   (SNIP_SCRATCH + 0x600)
#define SNIP_END_PORT  0xf4
#define USER_CS        0x2b
#define USER_DS        0x23

static int kvm_fd = -1;
struct vm { int fd, vcpu; struct kvm_run *run; uint8_t *mem; size_t mem_size; };
static struct vm snip = { -1, -1, NULL, NULL, 0 };

static volatile sig_atomic_t timed_out;
static void on_alarm(int sig) { (void)sig; timed_out = 1; }

static void arm_timer(long ms) {
  struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
  timed_out = 0;
  setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm_timer(void) {
  struct itimerval it = { { 0, 0 }, { 0, 0 } };
  setitimer(ITIMER_REAL, &it, NULL);
}

static int open_kvm(void) {
  if (kvm_fd < 0) kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  return kvm_fd;
}

/* One VM, one memslot of `mem_size` bytes at GPA 0, one vCPU with kvm_run mapped. */
static int vm_create(struct vm *vm, size_t mem_size) {
  if (open_kvm() < 0) return -errno;
  vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
  if (vm->fd < 0) return -errno;
  vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (vm->mem == MAP_FAILED) return -errno;
  vm->mem_size = mem_size;
  struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
                                           .userspace_addr = (uint64_t)vm->mem };
  if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) return -errno;
  vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
  if (vm->vcpu < 0) return -errno;
  int run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < 0) return -errno;
  vm->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
  if (vm->run == MAP_FAILED) return -errno;
  /* Give the vCPU the host's CPUID, so the guest sees the instructions the CPU really has. */
  struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[256]; } cpuid = { .c.nent = 256 };
  if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &cpuid) == 0) ioctl(vm->vcpu, KVM_SET_CPUID2, &cpuid);
  return 0;
}

static void vm_destroy(struct vm *vm) {
  if (vm->run) munmap(vm->run, 4096);
  if (vm->mem) munmap(vm->mem, vm->mem_size);
  if (vm->vcpu >= 0) close(vm->vcpu);
  if (vm->fd >= 0) close(vm->fd);
  *vm = (struct vm){ -1, -1, NULL, NULL, 0 };
}

static void put64(uint8_t *mem, uint64_t gpa, uint64_t v) { memcpy(mem + gpa, &v, 8); }

static struct kvm_segment seg(uint16_t sel, uint8_t type, uint8_t dpl, uint8_t l, uint8_t db) {
  return (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
                               .dpl = dpl, .db = db, .s = 1, .l = l, .g = 1 };
}

/* Identity-maps the first 1 GiB with 2 MiB pages; `user` sets U/S so CPL3 may use them. */
static void map_1g(uint8_t *mem, uint64_t pml4, uint64_t pdpt, uint64_t pd, int user) {
  uint64_t us = user ? 4 : 0;
  put64(mem, pml4, pdpt | 3 | us);
  put64(mem, pdpt, pd | 3 | us);
  for (uint64_t i = 0; i < 512; i++) put64(mem, pd + i * 8, (i << 21) | 0x83 | us);
}

static struct kvm_sregs snip_sregs;

static int snippet_vm_init(void) {
  int r = vm_create(&snip, SNIP_MEM);
  if (r < 0) return r;
  uint8_t *m = snip.mem;
  map_1g(m, SNIP_PML4, SNIP_PDPT, SNIP_PD, 1);
  put64(m, SNIP_GDT + 0x08, 0x00af9b000000ffffull); /* kernel code */
  put64(m, SNIP_GDT + 0x10, 0x00cf93000000ffffull); /* kernel data */
  put64(m, SNIP_GDT + 0x20, 0x00cff3000000ffffull); /* user data, 0x23 */
  put64(m, SNIP_GDT + 0x28, 0x00affb000000ffffull); /* user code, 0x2b */
  if (ioctl(snip.vcpu, KVM_GET_SREGS, &snip_sregs) < 0) return -errno;
  struct kvm_sregs *s = &snip_sregs;
  s->cr0 = 0x80000033;
  s->cr3 = SNIP_PML4;
  s->cr4 = 0x20 | 0x200 | 0x400; /* PAE, OSFXSR, OSXMMEXCPT */
  s->efer = 0x500;
  s->cs = seg(USER_CS, 11, 3, 1, 0);
  s->ds = s->es = s->fs = s->gs = s->ss = seg(USER_DS, 3, 3, 0, 1);
  s->tr = (struct kvm_segment){ .base = SNIP_TSS, .limit = 0x67, .selector = 0x30, .type = 11, .present = 1 };
  s->gdt.base = SNIP_GDT;
  s->gdt.limit = 0x3f;
  s->fs.base = SNIP_FS_BASE;
  s->gs.base = SNIP_GS_BASE;
  return 0;
}

static const char *exit_kind(struct kvm_run *run, int ret, char *buf, size_t n) {
  if (ret < 0) { snprintf(buf, n, timed_out ? "timeout" : "errno:%d", -ret); return buf; }
  switch (run->exit_reason) {
  case KVM_EXIT_IO:
    if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == SNIP_END_PORT) return "out";
    snprintf(buf, n, "io:%x", run->io.port);
    return buf;
  case KVM_EXIT_INTERNAL_ERROR: snprintf(buf, n, "internal_error:%u", run->internal.suberror); return buf;
  case KVM_EXIT_SHUTDOWN: return "shutdown";
  case KVM_EXIT_HLT: return "hlt";
  case KVM_EXIT_MMIO: snprintf(buf, n, "mmio:%llx", (unsigned long long)run->mmio.phys_addr); return buf;
  case KVM_EXIT_FAIL_ENTRY:
    snprintf(buf, n, "fail_entry:%llx", (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
    return buf;
  default: snprintf(buf, n, "exit:%u", run->exit_reason); return buf;
  }
}

static void cmd_snippet(char **tok, int ntok) {
  if (ntok != 20) fail("S needs <rflags> <16 gprs> <code> <scratch>");
  if (snip.fd < 0) {
    int r = snippet_vm_init();
    if (r < 0) { printf("R errno:%d\n", -r); return; }
  }
  size_t code_len, scratch_len;
  uint8_t *code = unhex(tok[18], &code_len), *scratch = unhex(tok[19], &scratch_len);
  if (!code || !scratch || code_len + 2 > SNIP_CODE_MAX || scratch_len > SNIP_SCRATCH_MAX) fail("S: bad code or scratch");
  memcpy(snip.mem + SNIP_CODE, code, code_len);
  snip.mem[SNIP_CODE + code_len] = 0xe6; /* out SNIP_END_PORT, al */
  snip.mem[SNIP_CODE + code_len + 1] = SNIP_END_PORT;
  memset(snip.mem + SNIP_SCRATCH, 0, SNIP_SCRATCH_MAX);
  memcpy(snip.mem + SNIP_SCRATCH, scratch, scratch_len);

  struct kvm_regs regs;
  __u64 *g = &regs.rax;
  memset(&regs, 0, sizeof regs);
  /* kvm_regs order: rax rbx rcx rdx rsi rdi rsp rbp r8..r15; the protocol uses the x86 encoding order. */
  static const int slot[16] = { 0, 2, 3, 1, 6, 7, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15 };
  for (int i = 0; i < 16; i++) g[slot[i]] = num(tok[2 + i]);
  regs.rflags = num(tok[1]);
  regs.rip = SNIP_CODE;
  int ret = ioctl(snip.vcpu, KVM_SET_SREGS, &snip_sregs);
  if (ret == 0) ret = ioctl(snip.vcpu, KVM_SET_REGS, &regs);
  if (ret == 0) {
    arm_timer(2000);
    ret = ioctl(snip.vcpu, KVM_RUN, 0);
    disarm_timer();
  }
  char kb[64];
  const char *kind = exit_kind(snip.run, ret < 0 ? -errno : 0, kb, sizeof kb);
  ioctl(snip.vcpu, KVM_GET_REGS, &regs);
  printf("R %s %llx %llx", kind, (unsigned long long)regs.rip, (unsigned long long)regs.rflags);
  for (int i = 0; i < 16; i++) printf(" %llx", (unsigned long long)g[slot[i]]);
  putchar(' ');
  puthex(snip.mem + SNIP_SCRATCH, scratch_len);
  putchar('\n');
  free(code);
  free(scratch);
  /* A guest that faulted (no IDT: shutdown or internal error) leaves the vCPU in a state no
     later snippet should inherit, so the next one gets a fresh VM. */
  if (strcmp(kind, "out") != 0) vm_destroy(&snip);
}

/* ---- images, as `kvmts run --mode long64 --json` runs them -------------------------------- */

static void json_hex(const char *key, const uint8_t *b, size_t n) {
  printf(",\"%s\":\"", key);
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
  putchar('"');
}

static void json_final(struct vm *vm) {
  struct kvm_regs r;
  struct kvm_sregs s;
  ioctl(vm->vcpu, KVM_GET_REGS, &r);
  ioctl(vm->vcpu, KVM_GET_SREGS, &s);
  static const char *names[16] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
                                   "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
  __u64 *g = &r.rax;
  fputs(",\"regs\":{", stdout);
  for (int i = 0; i < 16; i++) printf("%s\"%s\":\"0x%llx\"", i ? "," : "", names[i], (unsigned long long)g[i]);
  printf(",\"rip\":\"0x%llx\",\"rflags\":\"0x%llx\"}", (unsigned long long)r.rip, (unsigned long long)r.rflags);
  printf(",\"sregs\":{\"cr0\":\"0x%llx\",\"cr3\":\"0x%llx\",\"cr4\":\"0x%llx\",\"efer\":\"0x%llx\"}}\n",
         (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
         (unsigned long long)s.efer);
}

#define COM1 0x3f8

static void cmd_image(char **tok, int ntok) {
  if (ntok < 7) fail("I needs <image> <mem> <load> <entry> <maxexits> <timeout-ms> [<reg>=<value> ...]");
  size_t len;
  uint8_t *image = unhex(tok[1], &len);
  uint64_t mem = num(tok[2]), load = num(tok[3]), entry = num(tok[4]), max_exits = num(tok[5]);
  long timeout_ms = (long)num(tok[6]);
  if (!image || mem < 0x10000 || mem % 4096 || load + len > mem - 0x4000) fail("I: bad image or layout");
  struct vm vm = { -1, -1, NULL, NULL, 0 };
  int r = vm_create(&vm, mem);
  if (r < 0) {
    printf("J {\"exit\":\"internal_error\",\"errno\":%d}\nE -\n", -r);
    vm_destroy(&vm);
    free(image);
    return;
  }
  uint8_t *m = vm.mem;
  memcpy(m + load, image, len);
  /* DESIGN.md's long64 set-up: tables at the top of memory, CPL0, 2 MiB identity pages. */
  map_1g(m, mem - 0x3000, mem - 0x2000, mem - 0x1000, 0);
  put64(m, mem - 0x4000 + 0x08, 0x00af9b000000ffffull);
  put64(m, mem - 0x4000 + 0x10, 0x00cf93000000ffffull);
  struct kvm_sregs s;
  ioctl(vm.vcpu, KVM_GET_SREGS, &s);
  s.cr0 = 0x80000033;
  s.cr3 = mem - 0x3000;
  s.cr4 = 0x20;
  s.efer = 0x500;
  s.cs = seg(0x08, 11, 0, 1, 0);
  s.ds = s.es = s.fs = s.gs = s.ss = seg(0x10, 3, 0, 0, 1);
  s.gdt.base = mem - 0x4000;
  s.gdt.limit = 0x17;
  struct kvm_regs regs = { .rip = entry, .rflags = 2 };
  /* Registers the VMM sets before the first KVM_RUN, by kvm_regs field name. */
  static const char *reg_names[18] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9",
                                       "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags" };
  for (int i = 7; i < ntok; i++) {
    char *eq = strchr(tok[i], '=');
    int k = 0;
    if (eq) *eq = 0;
    while (k < 18 && (!eq || strcmp(tok[i], reg_names[k]) != 0)) k++;
    if (k == 18) fail("I: bad register assignment");
    (&regs.rax)[k] = num(eq + 1);
  }
  ioctl(vm.vcpu, KVM_SET_SREGS, &s);
  ioctl(vm.vcpu, KVM_SET_REGS, &regs);

  uint8_t *serial = malloc(1 << 20);
  size_t serial_len = 0;
  arm_timer(timeout_ms);
  for (uint64_t n = 0;; n++) {
    if (n == max_exits) { fputs("J {\"exit\":\"max_exits\"", stdout); json_final(&vm); break; }
    int ret = ioctl(vm.vcpu, KVM_RUN, 0);
    if (ret < 0) {
      if (errno == EINTR && !timed_out) { n--; continue; }
      if (timed_out) fputs("J {\"exit\":\"timeout\"", stdout);
      else printf("J {\"exit\":\"internal_error\",\"errno\":%d", errno);
      json_final(&vm);
      break;
    }
    struct kvm_run *run = vm.run;
    if (run->exit_reason == KVM_EXIT_IO) {
      uint8_t *data = (uint8_t *)run + run->io.data_offset;
      size_t bytes = (size_t)run->io.size * run->io.count;
      int out = run->io.direction == KVM_EXIT_IO_OUT;
      if (!out) memset(data, 0xff, bytes);
      if (out && run->io.port == 0xf4) {
        uint32_t code = 0;
        memcpy(&code, data, run->io.size);
        printf("J {\"exit\":\"debug_exit\",\"code\":%u", code);
        json_final(&vm);
        break;
      }
      /* COM1 is the VMM's own device (kvmts run claims 0x3f8-0x3ff): no trace row for it. */
      if (run->io.port >= COM1 && run->io.port < COM1 + 8) {
        if (out && run->io.port == COM1 && serial_len + bytes <= (1 << 20)) {
          memcpy(serial + serial_len, data, bytes);
          serial_len += bytes;
        }
        continue;
      }
      printf("J {\"exit\":\"io\",\"dir\":\"%s\",\"port\":%u,\"size\":%u,\"count\":%u", out ? "out" : "in",
             run->io.port, run->io.size, run->io.count);
      json_hex("data", data, bytes);
      puts("}");
    } else if (run->exit_reason == KVM_EXIT_MMIO) {
      if (!run->mmio.is_write) memset(run->mmio.data, 0xff, run->mmio.len);
      printf("J {\"exit\":\"mmio\",\"dir\":\"%s\",\"addr\":\"0x%llx\",\"len\":%u", run->mmio.is_write ? "write" : "read",
             (unsigned long long)run->mmio.phys_addr, run->mmio.len);
      json_hex("data", run->mmio.data, run->mmio.len);
      puts("}");
    } else {
      switch (run->exit_reason) {
      case KVM_EXIT_HLT: fputs("J {\"exit\":\"hlt\"", stdout); break;
      case KVM_EXIT_SHUTDOWN: fputs("J {\"exit\":\"shutdown\"", stdout); break;
      case KVM_EXIT_FAIL_ENTRY:
        printf("J {\"exit\":\"fail_entry\",\"reason\":\"0x%llx\"",
               (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        break;
      case KVM_EXIT_INTERNAL_ERROR: printf("J {\"exit\":\"internal_error\",\"suberror\":%u", run->internal.suberror); break;
      default: printf("J {\"exit\":\"unknown\",\"reason\":%u", run->exit_reason); break;
      }
      json_final(&vm);
      break;
    }
  }
  disarm_timer();
  fputs("E ", stdout);
  puthex(serial, serial_len);
  putchar('\n');
  free(serial);
  free(image);
  vm_destroy(&vm);
}

/* ---- main loop ---------------------------------------------------------------------------- */

int main(void) {
  struct sigaction sa = { .sa_handler = on_alarm };
  sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: KVM_RUN returns EINTR when the timer fires */
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  static char *tok[4096];
  while ((n = getline(&line, &cap, stdin)) > 0) {
    int ntok = 0;
    for (char *p = strtok(line, " \t\r\n"); p && ntok < 4096; p = strtok(NULL, " \t\r\n")) tok[ntok++] = p;
    if (ntok == 0) continue;
    switch (tok[0][0]) {
    case 'S': cmd_snippet(tok, ntok); break;
    case 'O': {
      if (ntok < 3) fail("O needs <name> <path>");
      int fd = open(tok[2], O_RDWR | O_CLOEXEC);
      long ret = fd < 0 ? -errno : fd;
      set_fd(tok[1], ret);
      printf("= %ld\n", ret);
      break;
    }
    case 'C': {
      if (ntok < 2) fail("C needs <fdref>");
      printf("= %d\n", close(fdref(tok[1])) < 0 ? -errno : 0);
      break;
    }
    case 'M': cmd_mmap_anon(tok, ntok); break;
    case 'F': cmd_mmap_fd(tok, ntok); break;
    case 'X': {
      if (ntok < 4) fail("X needs <map> <off> <len>");
      size_t off = num(tok[2]), len = num(tok[3]);
      struct named *m = map_range(tok[1], off, len);
      fputs("= 0 ", stdout);
      puthex((uint8_t *)m->value + off, len);
      putchar('\n');
      break;
    }
    case 'W': {
      if (ntok < 4) fail("W needs <map> <off> <hex>");
      size_t len, off = num(tok[2]);
      uint8_t *b = unhex(tok[3], &len);
      if (!b) fail("W: bad hex");
      struct named *m = map_range(tok[1], off, len);
      memcpy((uint8_t *)m->value + off, b, len);
      free(b);
      puts("= 0");
      break;
    }
    case 'Q': cmd_ioctl(tok, ntok); break;
    case 'I': cmd_image(tok, ntok); break;
    default: fail("unknown command");
    }
    fflush(stdout);
  }
  free(line);
  return 0;
}
