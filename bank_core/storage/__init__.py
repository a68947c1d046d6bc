"""Storage: the declarative base, the kernel's tables, engines and migrations."""
