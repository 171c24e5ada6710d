import { useQuery } from "@connectrpc/connect-query";
import { CatalogService, type Product } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { useState, type FormEvent } from "react";
import { cartStore, useCart } from "../cart.js";
import { ErrorNotice } from "../error-notice.js";
import { formatPrice } from "../format.js";

const PAGE_SIZE = 6;
const CATEGORIES = ["clothing", "home", "kitchen", "office", "outdoor"];

export function CatalogPage() {
  const [query, setQuery] = useState("");
  const [typed, setTyped] = useState("");
  const [category, setCategory] = useState("");
  // Tokens of the pages before this one, so "Previous" works without the server keeping state.
  const [tokens, setTokens] = useState<string[]>([""]);
  const pageToken = tokens[tokens.length - 1]!;
  const products = useQuery(CatalogService.method.listProducts, { pageSize: PAGE_SIZE, pageToken, query, category });

  const search = (event: FormEvent) => {
    event.preventDefault();
    setQuery(typed.trim());
    setTokens([""]);
  };

  return (
    <section>
      <h1>Shop</h1>
      {/* biome-ignore lint/a11y/useSemanticElements: React's JSX types have no <search> element yet; the role says the same. */}
      <form className="toolbar" role="search" onSubmit={search}>
        <input aria-label="Search products" placeholder="Search products" value={typed} onChange={(e) => setTyped(e.target.value)} maxLength={100} />
        <select
          aria-label="Category"
          value={category}
          onChange={(e) => {
            setCategory(e.target.value);
            setTokens([""]);
          }}
        >
          <option value="">All categories</option>
          {CATEGORIES.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
        <button type="submit">Search</button>
      </form>
      {products.error && <ErrorNotice error={products.error} onRetry={() => void products.refetch()} />}
      {products.isPending && <p className="muted">Loading products…</p>}
      {products.data && products.data.products.length === 0 && <p>No products match{query ? ` “${query}”` : ""}.</p>}
      <ul className="grid" aria-label="products">
        {products.data?.products.map((product) => (
          <ProductCard key={product.id} product={product} />
        ))}
      </ul>
      <nav className="pager" aria-label="pages">
        <button type="button" disabled={tokens.length === 1} onClick={() => setTokens(tokens.slice(0, -1))}>
          Previous
        </button>
        <span>Page {tokens.length}</span>
        <button type="button" disabled={!products.data?.nextPageToken} onClick={() => setTokens([...tokens, products.data!.nextPageToken])}>
          Next
        </button>
      </nav>
    </section>
  );
}

function ProductCard({ product }: { product: Product }) {
  const cart = useCart();
  const inCart = cart.find((line) => line.productId === product.id)?.quantity ?? 0;
  const soldOut = product.stockAvailable <= 0;
  return (
    <li className="card" aria-label={product.name}>
      {product.imageUrl && <img src={product.imageUrl} alt="" width={96} height={96} loading="lazy" />}
      <h2>{product.name}</h2>
      <p className="muted">{product.description}</p>
      <p>
        <strong>{formatPrice(product.price)}</strong> · <span className={soldOut ? "stock out" : "stock"}>{soldOut ? "Out of stock" : `${product.stockAvailable} in stock`}</span>
      </p>
      <button
        type="button"
        disabled={soldOut}
        onClick={() => cartStore.add({ productId: product.id, name: product.name, priceMinor: Number(product.price?.amountMinor ?? 0n), currencyCode: product.price?.currencyCode ?? "EUR" })}
      >
        Add to cart{inCart > 0 ? ` (${inCart})` : ""}
      </button>
    </li>
  );
}
