# deltaimg runtime image: everything under /opt/deltaimg, nothing else, so that a generated
# Dockerfile can `COPY --from=deltaimg/runtime:<version> /opt/deltaimg /opt/deltaimg` into a
# FROM scratch stage or any base (glibc, musl, busybox, distroless) and run it without a shell:
#   RUN ["/opt/deltaimg/deltaimg", "apply", ...]
# The context is staged by scripts/build-runtime-image.sh (run `npm run image`), not the repo root:
# it holds this machine's node, the exact shared libraries it needs (loader included), the
# built program and its production dependencies. No image is pulled: the build works offline.
FROM scratch
COPY opt/deltaimg /opt/deltaimg
LABEL org.opencontainers.image.title="deltaimg runtime" \
      org.opencontainers.image.description="Self-contained deltaimg (node + libraries) under /opt/deltaimg" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/opt/deltaimg/deltaimg"]
CMD ["--help"]
