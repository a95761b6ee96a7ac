"""The book's concept figures, drawn with matplotlib (``python tools/figures.py``).

One module per chapter (``chNN.py``), each with ``FIGURES``: figure name -> a function
that returns a matplotlib Figure. :mod:`style` holds the shared pieces (boxes, tensors,
arrows) and the palette, :data:`attention_course.viz.PALETTE`, that the plots use too.
"""
