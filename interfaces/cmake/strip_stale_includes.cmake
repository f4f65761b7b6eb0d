# The ROS 2 wheels on PyPI export CMake targets whose INTERFACE_INCLUDE_DIRECTORIES still
# name the directory they were built in (/opt/python/...). That directory does not exist
# here, and CMake refuses imported targets with missing include dirs. Drop such entries.
# On a regular ROS 2 install no entry matches and this is a no-op.
function(_et_strip_stale_includes)
  get_property(_dirs DIRECTORY PROPERTY IMPORTED_TARGETS)
  foreach(_tgt IN LISTS _dirs)
    get_target_property(_inc ${_tgt} INTERFACE_INCLUDE_DIRECTORIES)
    if(_inc)
      set(_kept "")
      foreach(_d IN LISTS _inc)
        if(NOT _d MATCHES "^/opt/python/")
          list(APPEND _kept "${_d}")
        endif()
      endforeach()
      set_target_properties(${_tgt} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
    endif()
  endforeach()
endfunction()
_et_strip_stale_includes()
