"""`p2p-real ui`: a local web page over the runs layer. `workbench.py` does the work behind each
button and knows nothing of the page; `page.py` lays the page out with Gradio (an optional extra,
imported by nothing else) and calls it."""
