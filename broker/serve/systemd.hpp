// The service manager's interface (libsystemd's sd_listen_fds, sd_is_socket_unix, sd_notify), with
// libsystemd loaded on first use. Only `serve` talks to systemd; linked into the binary, libsystemd
// and the five libraries it pulls in cost every `fdbroker run` about 1.4 ms of start-up (bench/, P5).
#pragma once

namespace fdbroker::broker::systemd {

// sd_listen_fds(1): the number of sockets passed (0 also when libsystemd is missing), or -errno.
[[nodiscard]] int listen_fds() noexcept;
// sd_is_socket_unix(fd, type, listening, NULL, 0): > 0 when it is.
[[nodiscard]] int is_socket_unix(int fd, int type, int listening) noexcept;
// sd_notify(0, state); nothing when there is no NOTIFY_SOCKET or no libsystemd.
void notify(const char* state) noexcept;

}  // namespace fdbroker::broker::systemd
