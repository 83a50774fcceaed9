{
  "targets": [
    {
      "target_name": "fsext",
      "sources": ["fsext.c", "copyfiles.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
