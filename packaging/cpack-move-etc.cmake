# CPack pre-build script: files installed under PREFIX/etc (a plain install's place for them) belong
# in /etc in the package, where dpkg handles them as conffiles.
file(GLOB staged LIST_DIRECTORIES true "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/usr/etc/*")
if(NOT staged)
    message(FATAL_ERROR "cpack-move-etc: nothing staged under ${CPACK_TEMPORARY_INSTALL_DIRECTORY}/usr/etc")
endif()
file(MAKE_DIRECTORY "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/etc")
foreach(path IN LISTS staged)
    get_filename_component(name "${path}" NAME)
    file(RENAME "${path}" "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/etc/${name}")
endforeach()
file(REMOVE_RECURSE "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/usr/etc")
