/**
 * Import this module first, before anything that builds a schema, in browsers: it makes zod
 * interpret schemas instead of compiling them. zod compiles object parsers with `new Function`
 * when it can, and decides so when each schema is constructed (at module load); under a CSP
 * without 'unsafe-eval' (ours) even the probe for `new Function` is a reported CSP violation.
 * The relay, whose Node has no CSP, does not import this and keeps the compiled parsers.
 */
import { z } from 'zod';

z.config({ jitless: true });
