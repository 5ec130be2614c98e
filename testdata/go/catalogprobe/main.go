// Command catalogprobe calls every public standard-library API that
// gohook's capability catalog (gohook/data/catalog.yaml) promises to funnel
// into a hook point. It is built, never run, by tests/test_catalog.py with
// every supported Go toolchain; the test then checks with `go tool nm` that
// each catalog hook function for that Go version is present in the binary.
//
// Every call sits behind a run-time condition so that the linker keeps the
// whole call graph while the program, if ever started without arguments,
// does nothing.
package main

import (
	"context"
	"io/fs"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"plugin"
	"syscall"
	"time"
	"unsafe"
)

var sink []interface{}

func keep(v ...interface{}) { sink = append(sink, v...) }

func files() {
	f, err := os.Open("/etc/hostname")
	keep(f, err)
	f, err = os.Create("/tmp/x")
	keep(f, err)
	f, err = os.OpenFile("/tmp/x", os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	keep(f, err)
	b, err := os.ReadFile("/etc/hostname")
	keep(b, err)
	keep(os.WriteFile("/tmp/x", b, 0o600))
	keep(os.Remove("/tmp/x"), os.RemoveAll("/tmp/y"), os.Rename("/tmp/a", "/tmp/b"))
	keep(os.Mkdir("/tmp/d", 0o700), os.MkdirAll("/tmp/d/e", 0o700))
	keep(os.MkdirTemp("", "p"))
	keep(os.CreateTemp("", "p"))
	keep(os.Chmod("/tmp/x", 0o600), os.Chown("/tmp/x", 1, 1), os.Lchown("/tmp/x", 1, 1))
	keep(os.Link("/tmp/a", "/tmp/b"), os.Symlink("/tmp/a", "/tmp/c"), os.Truncate("/tmp/a", 0))
	keep(os.Chtimes("/tmp/a", time.Time{}, time.Time{}))
	keep(os.ReadDir("/tmp"))
	keep(os.Stat("/tmp"))
	keep(os.Lstat("/tmp"))
	keep(os.Readlink("/tmp/c"))
	keep(fs.ReadFile(os.DirFS("/tmp"), "x"))
	keep(filepath.Walk("/tmp", func(string, fs.FileInfo, error) error { return nil }))
	keep(ioutil.ReadFile("/etc/hostname"))
	keep(ioutil.WriteFile("/tmp/x", nil, 0o600))
	keep(ioutil.ReadDir("/tmp"))
	keep(ioutil.TempFile("", "p"))
	keep(ioutil.TempDir("", "p"))
	if f != nil {
		keep(f.Chmod(0o600), f.Chown(1, 1), f.Truncate(0), f.Chdir())
		keep(f.ReadDir(-1))
		keep(f.Readdirnames(-1))
	}
	keep(syscall.Open("/tmp/x", syscall.O_RDONLY, 0))
	keep(syscall.Access("/tmp/x", 4), syscall.Mkfifo("/tmp/f", 0o600), syscall.Unlink("/tmp/f"))
	keep(syscall.Rmdir("/tmp/d"), syscall.Mknod("/tmp/n", 0o600, 0))
	keep(syscall.Creat("/tmp/x", 0o600))
	keep(syscall.Faccessat(-100, "/tmp/x", 4, 0), syscall.Fchmodat(-100, "/tmp/x", 0o600, 0))
	keep(syscall.Utimes("/tmp/x", nil), syscall.UtimesNano("/tmp/x", nil))
	rootAPIs()
	rootAPIs125()
}

func network() {
	keep(net.Dial("tcp", "127.0.0.1:1"))
	// sends with a destination (syscall.sendto, syscall.sendmsgN)
	sa := &syscall.SockaddrInet4{Port: 1, Addr: [4]byte{127, 0, 0, 1}}
	keep(syscall.Sendto(3, []byte("x"), 0, sa), syscall.Sendmsg(3, []byte("x"), nil, sa, 0))
	keep(syscall.SendmsgN(3, []byte("x"), nil, sa, 0))
	if uc, err := net.ListenUDP("udp", nil); err == nil {
		ua := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
		keep(uc.WriteTo([]byte("x"), ua))
		keep(uc.WriteToUDP([]byte("x"), ua))
		keep(uc.WriteMsgUDP([]byte("x"), nil, ua))
	}
	keep(net.DialTimeout("udp", "127.0.0.1:1", time.Second))
	keep(net.DialTCP("tcp", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}))
	keep(net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}))
	keep(net.DialUnix("unix", nil, &net.UnixAddr{Name: "/tmp/s", Net: "unix"}))
	keep(net.DialIP("ip4:icmp", nil, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}))
	var d net.Dialer
	keep(d.DialContext(context.Background(), "tcp", "localhost:1"))
	keep(http.Get("http://127.0.0.1:1/"))
	keep(net.LookupHost("localhost"))
	keep(net.DefaultResolver.LookupIPAddr(context.Background(), "localhost"))
	keep(net.Listen("tcp", "127.0.0.1:0"))
	keep(net.ListenTCP("tcp", &net.TCPAddr{}))
	keep(net.ListenUDP("udp", &net.UDPAddr{}))
	keep(net.ListenUnix("unix", &net.UnixAddr{Name: "/tmp/s", Net: "unix"}))
	keep(net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "/tmp/g", Net: "unixgram"}))
	keep(net.ListenIP("ip4:icmp", &net.IPAddr{}))
	keep(net.ListenPacket("udp", "127.0.0.1:0"))
	keep(net.ListenMulticastUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}))
	var lc net.ListenConfig
	keep(lc.Listen(context.Background(), "tcp", "127.0.0.1:0"))
	keep(lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0"))
	keep(http.ListenAndServe("127.0.0.1:0", nil))
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	keep(err)
	sa = &syscall.SockaddrInet4{Port: 1, Addr: [4]byte{127, 0, 0, 1}}
	keep(syscall.Connect(fd, sa), syscall.Bind(fd, sa), syscall.Listen(fd, 1))
}

func execs() {
	keep(os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{}))
	keep(exec.Command("/bin/true").Run())
	keep(exec.CommandContext(context.Background(), "true").Output())
	keep(exec.LookPath("true"))
	keep(syscall.ForkExec("/bin/true", []string{"true"}, nil))
	keep(syscall.StartProcess("/bin/true", []string{"true"}, nil))
	keep(syscall.Exec("/bin/true", []string{"true"}, nil))
}

func env() {
	keep(os.Getenv("HOME"))
	keep(os.LookupEnv("HOME"))
	keep(os.Environ(), os.ExpandEnv("$HOME"), os.Setenv("A", "b"), os.Unsetenv("A"))
	os.Clearenv()
	keep(syscall.Getenv("HOME"))
	keep(syscall.Environ(), syscall.Setenv("A", "b"), syscall.Unsetenv("A"))
	syscall.Clearenv()
	keep(os.UserHomeDir())
	keep(os.TempDir())
}

func system() {
	keep(os.Hostname())
	keep(os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid(), os.Getpid(), os.Getppid())
	keep(os.Getgroups())
	keep(os.Getwd())
	keep(os.Executable())
	var u syscall.Utsname
	keep(syscall.Uname(&u))
	var si syscall.Sysinfo_t
	keep(syscall.Sysinfo(&si))
	keep(syscall.Getuid(), syscall.Geteuid(), syscall.Getgid(), syscall.Getegid(), syscall.Getpid())
	keep(syscall.Getgroups())
	keep(syscall.Getwd())
	keep(os.Chdir("/"), syscall.Chdir("/"), syscall.Fchdir(0), syscall.Chroot("/"))
	keep(syscall.Kill(1, 0), syscall.Tgkill(1, 1, 0))
	if p, err := os.FindProcess(1); err == nil {
		keep(p.Signal(syscall.Signal(0)), p.Kill())
	}
	keep(syscall.Setuid(0), syscall.Setgid(0), syscall.Setreuid(0, 0), syscall.Setregid(0, 0))
	// executable memory (syscall.Mprotect, syscall.mmap)
	if m, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_EXEC, syscall.MAP_ANON|syscall.MAP_PRIVATE); err == nil {
		keep(syscall.Mprotect(m, syscall.PROT_READ))
	}
	keep(syscall.Setresuid(0, 0, 0), syscall.Setresgid(0, 0, 0), syscall.Setgroups(nil))
	keep(syscall.Sethostname([]byte("x")), syscall.Setdomainname([]byte("x")))
	keep(syscall.Mount("a", "b", "c", 0, ""), syscall.Unmount("b", 0), syscall.Reboot(0))
	keep(syscall.Umask(0o22))
	keep(syscall.Setrlimit(0, &syscall.Rlimit{}), syscall.Setpriority(0, 0, 0))
	keep(syscall.Settimeofday(&syscall.Timeval{}))
	keep(syscall.PtraceAttach(1))
	keep(syscall.PtracePokeData(1, 0, []byte{0}))
	var regs syscall.PtraceRegs
	keep(syscall.PtraceGetRegs(1, &regs))
}

func rawSyscalls() {
	keep(syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0))
	keep(syscall.Syscall6(syscall.SYS_GETPID, 0, 0, 0, 0, 0, 0))
	keep(syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0))
	keep(syscall.RawSyscall6(syscall.SYS_GETPID, 0, 0, 0, 0, 0, 0))
	keep(syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0))
	keep(syscall.AllThreadsSyscall6(syscall.SYS_GETPID, 0, 0, 0, 0, 0, 0))
}

func plugins() {
	keep(plugin.Open("/tmp/p.so"))
}

// printOffsets prints the byte offsets of the struct fields that catalog
// hooks read through a pointer argument, one "type.Field offset" per line;
// tests/test_catalog.py compares them with the catalog's recorded offsets.
func printOffsets() {
	var tcp net.TCPAddr
	var udp net.UDPAddr
	var ip net.IPAddr
	var unix net.UnixAddr
	var p os.Process
	offsets := []struct {
		field  string
		offset uintptr
	}{
		{"net.TCPAddr.IP", unsafe.Offsetof(tcp.IP)},
		{"net.TCPAddr.Port", unsafe.Offsetof(tcp.Port)},
		{"net.UDPAddr.IP", unsafe.Offsetof(udp.IP)},
		{"net.UDPAddr.Port", unsafe.Offsetof(udp.Port)},
		{"net.IPAddr.IP", unsafe.Offsetof(ip.IP)},
		{"net.UnixAddr.Name", unsafe.Offsetof(unix.Name)},
		{"os.Process.Pid", unsafe.Offsetof(p.Pid)},
	}
	for _, o := range offsets {
		os.Stdout.WriteString(o.field + " " + itoa(int(o.offset)) + "\n")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func main() {
	if len(os.Args) < 2 {
		return
	}
	if os.Args[1] == "offsets" {
		printOffsets()
		return
	}
	files()
	network()
	execs()
	env()
	system()
	rawSyscalls()
	plugins()
}
