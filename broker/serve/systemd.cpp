#include "broker/serve/systemd.hpp"

#include <dlfcn.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstdlib>

#include "broker/core/log.hpp"

namespace fdbroker::broker::systemd {

namespace {

struct Library {
    decltype(&::sd_listen_fds) listen_fds = nullptr;
    decltype(&::sd_is_socket_unix) is_socket_unix = nullptr;
    decltype(&::sd_notify) notify = nullptr;
};

const Library& library() noexcept {
    static const Library lib = [] {
        Library l;
        // Never closed: the functions are used until the broker exits.
        void* handle = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr) {
            if (std::getenv("LISTEN_FDS") || std::getenv("NOTIFY_SOCKET"))
                log("libsystemd.so.0 cannot be loaded (%s): ignoring LISTEN_FDS and NOTIFY_SOCKET",
                    ::dlerror());
            return l;
        }
        l.listen_fds = reinterpret_cast<decltype(l.listen_fds)>(::dlsym(handle, "sd_listen_fds"));
        l.is_socket_unix = reinterpret_cast<decltype(l.is_socket_unix)>(::dlsym(handle, "sd_is_socket_unix"));
        l.notify = reinterpret_cast<decltype(l.notify)>(::dlsym(handle, "sd_notify"));
        return l;
    }();
    return lib;
}

}  // namespace

int listen_fds() noexcept {
    // Without LISTEN_FDS there is nothing to ask libsystemd about (and nothing to load).
    if (std::getenv("LISTEN_FDS") == nullptr) return 0;
    return library().listen_fds ? library().listen_fds(1) : 0;
}

int is_socket_unix(int fd, int type, int listening) noexcept {
    return library().is_socket_unix ? library().is_socket_unix(fd, type, listening, nullptr, 0) : -ENOSYS;
}

void notify(const char* state) noexcept {
    if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
    if (library().notify) library().notify(0, state);
}

}  // namespace fdbroker::broker::systemd
