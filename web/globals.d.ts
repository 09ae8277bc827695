// What the pages' scripts share through `window` (checked by tsc --checkJs in scripts/check).

interface TickerApi {
  Clock: any;
  Live: any;
  safeUrl(value: unknown): string | null;
  sortKey(item: { published_at: string; id: string }): string;
  cursorAfter(a: string, b: string | null | undefined): boolean;
  shouldReconnect(code: number): boolean;
  getJson(url: string): Promise<any>;
  mounted: unknown[];
}

interface Window {
  Ticker: TickerApi;
}
