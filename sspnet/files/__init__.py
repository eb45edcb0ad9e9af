"""Files in and out, shared by both packages: images read as RGB pixels, maps, atomic writes."""
