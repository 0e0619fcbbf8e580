import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { CliError, CliErrorCode } from './errors.js';
import { initialState } from './organization.js';
import { openState, sealState, MAX_KEPT_INVITES, type OrgState } from './state.js';

let p: Primitives;
let key: Uint8Array;
let org: Uint8Array;
let state: OrgState;
let file: Uint8Array;
beforeAll(async () => {
  p = await loadSodiumBackend();
  key = p.random.bytes(32);
  org = p.random.bytes(32);
  state = initialState(p, 'Rainbow Shelter');
  file = sealState(p, key, org, state);
});

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    return error.code;
  }
}

describe('org state file', () => {
  it('opens to the state it was sealed from', () => {
    expect(openState(p, key, org, file)).toEqual(state);
  });

  it('holds nothing readable: no name, no secret in the clear', () => {
    const text = new TextDecoder('latin1').decode(file);
    expect(text).not.toContain('Rainbow');
    expect(text).not.toContain(state.enrolmentMailbox);
  });

  it('uses a fresh nonce for every write', () => {
    expect(sealState(p, key, org, state)).not.toEqual(file);
  });

  it('refuses every flipped bit as damaged', () => {
    for (let i = 0; i < file.length; i += 3) {
      const bad = file.slice();
      bad[i]! ^= 1;
      expect(codeOf(() => openState(p, key, org, bad))).toBe(CliErrorCode.STATE_FILE_DAMAGED);
    }
  });

  it('refuses a truncated file, another organization, and another state key as damaged', () => {
    expect(codeOf(() => openState(p, key, org, file.subarray(0, 20)))).toBe(
      CliErrorCode.STATE_FILE_DAMAGED,
    );
    expect(codeOf(() => openState(p, key, p.random.bytes(32), file))).toBe(
      CliErrorCode.STATE_FILE_DAMAGED,
    );
    expect(codeOf(() => openState(p, p.random.bytes(32), org, file))).toBe(
      CliErrorCode.STATE_FILE_DAMAGED,
    );
  });

  it('refuses an unknown version', () => {
    const v2 = file.slice();
    v2[7] = 2;
    expect(codeOf(() => openState(p, key, org, v2))).toBe(CliErrorCode.STATE_FILE_DAMAGED);
  });

  it('refuses to seal a state that breaks its bounds', () => {
    const invite = {
      id: '00'.repeat(16),
      secret: 'AA',
      coordinator: 'anna',
      createdAtSeconds: 1,
      expiresAtSeconds: 2,
      usedAtSeconds: null,
    };
    expect(() =>
      sealState(p, key, org, {
        ...state,
        invites: Array.from({ length: MAX_KEPT_INVITES + 1 }, () => invite),
      }),
    ).toThrow();
    expect(
      openState(
        p,
        key,
        org,
        sealState(p, key, org, {
          ...state,
          invites: Array.from({ length: MAX_KEPT_INVITES }, () => invite),
        }),
      ).invites,
    ).toHaveLength(MAX_KEPT_INVITES);
  });
});
