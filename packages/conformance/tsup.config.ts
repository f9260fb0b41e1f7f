import { defineConfig } from 'tsup';

// kvm-ref is test tooling (a dev dependency with no build of its own): left as an import, not bundled.
export default defineConfig({ entry: ['src/index.ts'], format: 'esm', dts: true, clean: true, external: ['@kvmts/kvm-ref'] });
