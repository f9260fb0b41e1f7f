/**
 * The committed flat images (images/NAME.bin, built by scripts/build.mjs). The directory sits
 * beside src/ and dist/ alike, so the same relative URL works from sources and from the build.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const IMAGES_DIR = new URL('../images/', import.meta.url);

/** The file system path of a guest's image. */
export function imagePath(name: string): string {
  return fileURLToPath(new URL(`${name}.bin`, IMAGES_DIR));
}

export function hasImage(name: string): boolean {
  return /^[a-z0-9_-]+$/.test(name) && existsSync(imagePath(name));
}

/** The bytes of a guest's image, to be copied to its load address. */
export function loadImage(name: string): Uint8Array {
  if (!hasImage(name)) throw new Error(`no guest image named ${JSON.stringify(name)}`);
  return new Uint8Array(readFileSync(imagePath(name)));
}
