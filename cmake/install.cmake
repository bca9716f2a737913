# `cmake --install build --prefix P`: the programs in P/bin, libbaton in P/lib,
# the SDK's header in P/include/baton/, and what a plugin's build needs to
# find them: P/lib/pkgconfig/baton.pc and the CMake package baton::baton
# (P/lib/cmake/baton/). Both are relocatable: they locate the prefix from
# where they are installed, so a tree copied elsewhere still works.
include(CMakePackageConfigHelpers)

set(BT_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/baton)

install(TARGETS baton-worker baton-scheduler baton
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS libbaton EXPORT batonTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES common/sdk/baton.h common/sdk/baton_test.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/baton)

# pkg-config: the prefix as a path from the .pc file's own directory
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(BT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH bt_pc_up /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
  string(REGEX REPLACE "/$" "" bt_pc_up "${bt_pc_up}")
  set(BT_PC_PREFIX "\${pcfiledir}/${bt_pc_up}")
endif()
configure_file(cmake/baton.pc.in ${CMAKE_BINARY_DIR}/baton.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/baton.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(EXPORT batonTargets NAMESPACE baton:: DESTINATION ${BT_CMAKEDIR})
configure_package_config_file(cmake/batonConfig.cmake.in
  ${CMAKE_BINARY_DIR}/batonConfig.cmake INSTALL_DESTINATION ${BT_CMAKEDIR})
# before 1.0 a minor version may break plugins: the ABI check says so at load
write_basic_package_version_file(${CMAKE_BINARY_DIR}/batonConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/batonConfig.cmake
        ${CMAKE_BINARY_DIR}/batonConfigVersion.cmake DESTINATION ${BT_CMAKEDIR})

# `cpack -G DEB` in the build directory: one package with all of the above,
# under /usr, its library dependencies worked out by dpkg-shlibdeps.
set(CPACK_PACKAGE_NAME baton)
set(CPACK_PACKAGE_VENDOR baton)
set(CPACK_PACKAGE_CONTACT "baton maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "durable execution for C on Kafka and Redis: programs, libbaton and its SDK")
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# building plugins needs these; running the programs does not
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libjansson-dev, pkg-config")
include(CPack)
