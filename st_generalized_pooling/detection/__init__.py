"""Translation-error detection on gettext catalogs: ``catalogs`` reads .po/.mo files into pairs, ``scoring``
scores them by cosine similarity, ``rules`` are the syntactic checks, ``check`` flags pairs (``st-gp check``);
``corruptions``, ``metrics``, ``config`` and ``evaluation`` measure it all on real catalogs (``st-gp evaluate``)."""
