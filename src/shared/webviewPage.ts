/** What a RepLens webview page is made of. */
export interface WebviewPageParts {
  view: 'editor' | 'report';
  title: string;
  /** The webview bundle (dist/webview.js) and the stylesheet (media/replens.css), as text. */
  script: string;
  style: string;
  /** A fresh random value per page: only elements carrying it may run or style. */
  nonce: string;
}

/**
 * The page every RepLens webview starts from, with its script and stylesheet inline. A page
 * that loads them by URL depends on VS Code's webview service worker, and in code-server a
 * page restored after a window reload sometimes never got them (the requests stayed pending,
 * so the page stayed blank); text inside the page needs no request. The policy allows only
 * this page's own nonce-carrying elements: no other script, no eval, nothing remote. The toolkit
 * reads the nonce from the csp-nonce meta for the style element it tests :focus-visible with.
 */
export function webviewPage({ view, title, script, style, nonce }: WebviewPageParts): string {
  // Either would end (or, after a '<!--', hide the end of) the element the text sits in.
  if (/<\/?script/i.test(script)) throw new Error('the webview script cannot be put inside the page: it contains "<script" or "</script"');
  if (/<\/style/i.test(style)) throw new Error('the webview stylesheet cannot be put inside the page: it contains "</style"');
  const csp = ["default-src 'none'", 'img-src data:', `style-src 'nonce-${nonce}'`, `script-src 'nonce-${nonce}'`].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta property="csp-nonce" content="${nonce}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style nonce="${nonce}">
${style}
</style>
<title>${escapeHtml(title)}</title>
</head>
<body data-view="${view}">
<main id="root" aria-live="polite"></main>
<script nonce="${nonce}">
${script}
</script>
</body>
</html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
