// Package atomicfile writes a small file so that a crash at any moment
// leaves either the old content or the new, never a torn mix: a temporary
// file in the same directory, fsynced, renamed over the target, and the
// directory fsynced so that the rename itself survives a power loss.
// Checkpoints (import, restore), a store's identity and certificates use it.
package atomicfile
