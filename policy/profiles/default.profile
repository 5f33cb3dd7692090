# gen seccomp profile "default": everything is allowed except calls that
# reach beyond the generation and harm the host. They fail with EPERM.
deny
# kernel modules
init_module
finit_module
delete_module
# rebooting and replacing the kernel
reboot
kexec_load
kexec_file_load
# mounts and the root directory
mount
umount2
pivot_root
chroot
move_mount
open_tree
fsopen
fsconfig
fsmount
fspick
mount_setattr
# swap
swapon
swapoff
# the system clock
settimeofday
clock_settime
clock_adjtime
adjtimex
# BPF and performance counters
bpf
perf_event_open
# the kernel keyring
add_key
request_key
keyctl
# file handles (escape from a mount namespace)
open_by_handle_at
name_to_handle_at
# entering or making namespaces
setns
unshare
# other processes' memory, tracing
ptrace
process_vm_readv
process_vm_writev
kcmp
# I/O ports, kernel log, accounting, quotas
iopl
ioperm
syslog
acct
quotactl
lookup_dcookie
vhangup
userfaultfd
