"""An in-process WebShop (Yao et al. 2022): catalogue, BM25 search, official-format pages, reward, client."""
