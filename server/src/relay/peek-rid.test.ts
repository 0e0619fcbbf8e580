import { describe, expect, it } from '@jest/globals';
import { MAX_REQUEST_ID } from '@passage/shared/protocol/limits';
import { peekRequestId } from './peek-rid.js';

const peek = (text: string) => peekRequestId(Buffer.from(text));

describe('peekRequestId', () => {
  it('reads the rid of a send frame wherever the key stands', () => {
    expect(peek('{"v":1,"t":"send","rid":42,"to":"abc","id":"x","env":"y"}')).toBe(42);
    expect(peek('{"v":1,"t":"ping","rid":7}')).toBe(7);
  });

  it(`reads 0 and MAX_REQUEST_ID (${MAX_REQUEST_ID}), the ends of the range`, () => {
    expect(peek('{"rid":0}')).toBe(0);
    expect(peek(`{"rid":${MAX_REQUEST_ID}}`)).toBe(MAX_REQUEST_ID);
  });

  it('reads nothing past MAX_REQUEST_ID or past ten digits', () => {
    expect(peek(`{"rid":${MAX_REQUEST_ID + 1}}`)).toBeUndefined();
    expect(peek('{"rid":12345678901}')).toBeUndefined();
    expect(peek('{"rid":99999999999999999999999}')).toBeUndefined();
  });

  it('reads nothing from a frame without a rid (an ack) or from text that is not a frame', () => {
    expect(peek('{"v":1,"t":"ack","ids":["a"]}')).toBeUndefined();
    expect(peek('nonsense')).toBeUndefined();
    expect(peek('')).toBeUndefined();
  });

  it('reads nothing from a rid that is not a plain JSON integer', () => {
    expect(peek('{"rid":-1}')).toBeUndefined();
    expect(peek('{"rid":05}')).toBeUndefined();
    expect(peek('{"rid":1.5}')).toBeUndefined();
    expect(peek('{"rid":1e3}')).toBeUndefined();
    expect(peek('{"rid":"1"}')).toBeUndefined();
    expect(peek('{"rid":}')).toBeUndefined();
    expect(peek('{"rid":12')).toBeUndefined(); // cut off
  });

  it('leaves a rid written with spaces to the parser', () => {
    expect(peek('{"rid" : 5}')).toBeUndefined();
    expect(peek('{"rid": 5}')).toBeUndefined();
  });
});
