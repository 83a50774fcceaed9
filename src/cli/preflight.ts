/** Checks a verb makes before any long work, so a broken install fails in the first second. */

/** The native addon loads (restores and root snapshots need it): else a one-line INSTALL error. */
export async function requireNativeAddon(): Promise<void> {
  const { fsext } = await import('../tree/fsext.js');
  fsext();
}
