# CPack pre-build script: turns the staged install (prefix /usr) into the package's layout.
set(stage "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")

# Files a plain install puts under PREFIX/etc belong in /etc, where dpkg handles them as conffiles.
file(GLOB etc_entries LIST_DIRECTORIES true "${stage}/usr/etc/*")
if(NOT etc_entries)
    message(FATAL_ERROR "cpack-stage: nothing staged under ${stage}/usr/etc")
endif()
file(MAKE_DIRECTORY "${stage}/etc")
foreach(path IN LISTS etc_entries)
    get_filename_component(name "${path}" NAME)
    file(RENAME "${path}" "${stage}/etc/${name}")
endforeach()
file(REMOVE_RECURSE "${stage}/usr/etc")

# The .pc file finds its prefix from its own place (any install prefix works); the package's prefix
# is fixed, and "prefix=/usr" is what pkg-config users and tools expect to read there.
file(GLOB pc_files "${stage}/usr/lib/*/pkgconfig/fdbroker.pc" "${stage}/usr/lib/pkgconfig/fdbroker.pc")
if(NOT pc_files)
    message(FATAL_ERROR "cpack-stage: no fdbroker.pc staged")
endif()
foreach(pc IN LISTS pc_files)
    file(READ "${pc}" text)
    string(REGEX REPLACE "(^|\n)prefix=[^\n]*" "\\1prefix=/usr" text "${text}")
    string(REGEX REPLACE "^# Relative to this file[^\n]*\n" "" text "${text}")
    file(WRITE "${pc}" "${text}")
endforeach()

# Strip as Debian's dh_strip does (CPACK_STRIP_FILES already stripped the program and the shared
# library): the compiler's .comment notes go, and the static library loses its debug information
# but keeps its symbol table.
find_program(STRIP strip REQUIRED)
file(GLOB programs "${stage}/usr/bin/fdbroker" "${stage}/usr/lib/*/libfdbroker.so.*.*.*"
    "${stage}/usr/lib/libfdbroker.so.*.*.*")
file(GLOB archives "${stage}/usr/lib/*/libfdbroker.a" "${stage}/usr/lib/libfdbroker.a")
if(NOT programs OR NOT archives)
    message(FATAL_ERROR "cpack-stage: fdbroker, libfdbroker.so.* or libfdbroker.a not staged")
endif()
execute_process(COMMAND ${STRIP} --remove-section=.comment --remove-section=.note ${programs}
    COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${STRIP} --strip-debug --remove-section=.comment ${archives} COMMAND_ERROR_IS_FATAL ANY)
