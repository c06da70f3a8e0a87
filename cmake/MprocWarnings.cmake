# Compiler warnings for mproc's own targets (not for users of the installed library).
set(MPROC_WARNING_FLAGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wformat=2 -Wno-unused-parameter)
if(MPROC_WERROR)
  list(APPEND MPROC_WARNING_FLAGS -Werror)
endif()
if(MPROC_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
function(mproc_warnings target)
  target_compile_options(${target} PRIVATE ${MPROC_WARNING_FLAGS})
endfunction()
