package hostnet

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The legacy per-feature ethtool commands (linux/ethtool.h). They are still served by every
// kernel and need nothing but an ioctl on any socket, which keeps the agent free of an extra
// module. `ethtool -K dev rx off tx off tso off gso off gro off` is the equivalent, except
// that these commands do not reach feature bits newer than them (tx-tcp-accecn-segmentation
// may stay on): harmless here, since without tx checksumming the kernel cannot segment TCP.
var offloads = []struct {
	name     string
	get, set uint32
}{
	{"rx-checksum", 0x14, 0x15}, // ETHTOOL_GRXCSUM / ETHTOOL_SRXCSUM
	{"tx-checksum", 0x16, 0x17}, // ETHTOOL_GTXCSUM / ETHTOOL_STXCSUM (turning it off also drops TSO)
	{"tso", 0x1e, 0x1f},         // ETHTOOL_GTSO / ETHTOOL_STSO
	{"gso", 0x23, 0x24},         // ETHTOOL_GGSO / ETHTOOL_SGSO
	{"gro", 0x2b, 0x2c},         // ETHTOOL_GGRO / ETHTOOL_SGRO
}

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data: 16 bytes of name, then the union (24 bytes on
// 64-bit) whose first member here is the pointer to the ethtool command.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// offloadsOff turns every offload in the table off on dev, reading each first so that a
// device already right is not touched.
func (h *Host) offloadsOff(dev string) ([]string, error) {
	var ch []string
	err := h.inNS(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("ethtool socket: %w", err)
		}
		defer unix.Close(fd)
		for _, f := range offloads {
			on, err := ethtool(fd, dev, f.get, 0)
			if err != nil {
				return fmt.Errorf("reading %s of %s: %w", f.name, dev, err)
			}
			if on == 0 {
				continue
			}
			if _, err := ethtool(fd, dev, f.set, 0); err != nil {
				return fmt.Errorf("turning %s off on %s: %w", f.name, dev, err)
			}
			ch = append(ch, fmt.Sprintf("%s: %s off", dev, f.name))
		}
		return nil
	})
	return ch, err
}

func ethtool(fd int, dev string, cmd, data uint32) (uint32, error) {
	v := ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], dev)
	ifr.data = unsafe.Pointer(&v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}
