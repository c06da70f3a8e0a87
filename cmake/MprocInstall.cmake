# Installation: the library, its header, a CMake package (find_package(mproc) gives
# mproc::mproc) and a pkg-config file (pkg-config --cflags --libs mproc).
include(CMakePackageConfigHelpers)

install(TARGETS mproc EXPORT mprocTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/mproc.h ${PROJECT_SOURCE_DIR}/include/mproc_shared.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET mproc_mpi)
  # Loaded at run time from libmproc.so's directory; not part of the link interface.
  install(TARGETS mproc_mpi LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(EXPORT mprocTargets NAMESPACE mproc:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mprocConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mprocConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mprocConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mprocConfig.cmake ${PROJECT_BINARY_DIR}/mprocConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)

# The .pc file is relocatable (prefix from its own location), so --prefix at install time works.
# libmproc.so carries its own dependencies (MPI is in the runtime-loaded libmproc_mpi.so).
set(MPROC_PC_LIBS_PRIVATE "-lpthread -ldl")
file(RELATIVE_PATH MPROC_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(${PROJECT_SOURCE_DIR}/cmake/mproc.pc.in ${PROJECT_BINARY_DIR}/mproc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mproc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
