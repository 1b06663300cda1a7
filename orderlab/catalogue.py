"""A small product catalogue for the shop in the lessons."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_cents: int


CATALOGUE: tuple[Product, ...] = (
    Product("KB-001", "Mechanical keyboard", 8_999),
    Product("MS-002", "Wireless mouse", 2_499),
    Product("MN-003", "27-inch monitor", 22_900),
    Product("HD-004", "Noise-cancelling headphones", 14_950),
    Product("WC-005", "HD webcam", 5_490),
    Product("DK-006", "USB-C dock", 11_900),
    Product("CB-007", "USB-C cable", 1_299),
    Product("LS-008", "Laptop stand", 3_999),
    Product("SD-009", "1 TB SSD", 7_990),
    Product("MP-010", "Desk mat", 1_950),
    Product("LT-011", "Desk lamp", 3_450),
    Product("CH-012", "Office chair", 24_900),
)

BY_SKU: dict[str, Product] = {product.sku: product for product in CATALOGUE}
