import type { ProductRecord } from "./catalog.js";

/** The demo shop's products, seeded into an empty catalog. Prices in euro cents. */
export const demoCatalog: readonly Omit<ProductRecord, "updatedAt">[] = [
  { id: "MW-ESPRESSO-CUP", name: "Espresso cup", description: "A thick-walled porcelain cup that keeps a double shot hot.", priceMinor: 1290, currency: "EUR", stock: 120, categories: ["kitchen"], imageUrl: "/img/espresso-cup.svg" },
  { id: "MW-FIELD-NOTEBOOK", name: "Field notebook", description: "Dot-grid notebook, 96 pages, stitched, fits a back pocket.", priceMinor: 850, currency: "EUR", stock: 300, categories: ["office"], imageUrl: "/img/field-notebook.svg" },
  { id: "MW-WOOL-SOCKS", name: "Merino socks", description: "Hiking socks of merino wool, cushioned sole.", priceMinor: 1900, currency: "EUR", stock: 200, categories: ["clothing", "outdoor"], imageUrl: "/img/wool-socks.svg" },
  { id: "MW-HEADLAMP", name: "Headlamp", description: "Rechargeable headlamp, 400 lumen, red night mode.", priceMinor: 3490, currency: "EUR", stock: 60, categories: ["outdoor"], imageUrl: "/img/headlamp.svg" },
  { id: "MW-CAST-PAN", name: "Cast iron pan", description: "Pre-seasoned 26 cm cast iron skillet.", priceMinor: 4500, currency: "EUR", stock: 40, categories: ["kitchen"], imageUrl: "/img/cast-pan.svg" },
  { id: "MW-DESK-LAMP", name: "Desk lamp", description: "Dimmable LED desk lamp with a warm light setting.", priceMinor: 5900, currency: "EUR", stock: 35, categories: ["office", "home"], imageUrl: "/img/desk-lamp.svg" },
  { id: "MW-TEA-TIN", name: "Tea tin", description: "Airtight tin for 100 g of loose tea.", priceMinor: 990, currency: "EUR", stock: 150, categories: ["kitchen", "home"], imageUrl: "/img/tea-tin.svg" },
  { id: "MW-CANVAS-TOTE", name: "Canvas tote", description: "Heavy canvas tote bag with an inside pocket.", priceMinor: 1500, currency: "EUR", stock: 250, categories: ["clothing"], imageUrl: "/img/canvas-tote.svg" },
  { id: "MW-WATER-BOTTLE", name: "Steel water bottle", description: "Insulated 750 ml bottle, keeps water cold for a day.", priceMinor: 2700, currency: "EUR", stock: 90, categories: ["outdoor", "kitchen"], imageUrl: "/img/water-bottle.svg" },
  { id: "MW-PLANT-POT", name: "Terracotta pot", description: "Hand-thrown terracotta pot with saucer, 14 cm.", priceMinor: 1250, currency: "EUR", stock: 80, categories: ["home"], imageUrl: "/img/plant-pot.svg" },
  { id: "MW-PENCIL-SET", name: "Pencil set", description: "Six graphite pencils from 2H to 6B.", priceMinor: 650, currency: "EUR", stock: 400, categories: ["office"], imageUrl: "/img/pencil-set.svg" },
  { id: "MW-RAIN-JACKET", name: "Rain jacket", description: "Packable waterproof jacket with taped seams.", priceMinor: 8900, currency: "EUR", stock: 25, categories: ["clothing", "outdoor"], imageUrl: "/img/rain-jacket.svg" },
];
