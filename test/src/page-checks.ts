/**
 * Checks the browser tests run on every screen of the pages: screenshots as the phone shows
 * them, and axe-core's serious or critical violations.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

export const SCREENS_DIR = new URL('../../test-artifacts/screens/', import.meta.url);

const axeSource = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Saves the screen as the phone shows it (the top, 360 × 740) and the whole page. */
export async function shoot(page: Page, name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: new URL(`${name}.png`, SCREENS_DIR).pathname });
  await page.screenshot({
    path: new URL(`${name}-full.png`, SCREENS_DIR).pathname,
    fullPage: true,
  });
}

/** The ids of axe-core's serious and critical violations on the page as it is now. */
export async function seriousAxeViolations(page: Page): Promise<string[]> {
  // Evaluated over the DevTools protocol, which the page's CSP does not govern (a script tag
  // would be refused by it, as it should be).
  await page.evaluate(await axeSource);
  return page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: { run(): Promise<{ violations: { id: string; impact: string }[] }> };
      }
    ).axe;
    const result = await axe.run();
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => v.id);
  });
}

/** Whether the page fits the viewport's width (no horizontal scrolling). */
export async function noHorizontalScroll(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}
