"""styleid: find a person's stylized renderings (cartoons, caricatures, renders) from a natural photo."""
