/** The registry options every verb that reads or writes docker:// images takes. */
import type { Command } from 'commander';

export interface RegistryFlags {
  creds?: string;
  certDir?: string;
  insecure?: boolean;
}

export function withRegistryOptions(cmd: Command): Command {
  return cmd
    .option('--creds <USER:PASS>', 'registry credentials (default: docker login / credential helpers)')
    .option('--cert-dir <DIR>', 'CA certificates (*.crt) and client certificate for the registry (default /etc/docker/certs.d/HOST)')
    .option('--insecure', 'allow plain HTTP and unverified TLS to a registry that is not on loopback');
}

/** The registry flags as RegistryOptions (absent flags left out). */
export function registryOptions(flags: RegistryFlags): { creds?: string; certDir?: string; insecure?: boolean } {
  return {
    ...(flags.creds !== undefined ? { creds: flags.creds } : {}),
    ...(flags.certDir !== undefined ? { certDir: flags.certDir } : {}),
    ...(flags.insecure ? { insecure: true } : {}),
  };
}
