package domain

// DataIn describes a stream of image data handed to Image.SetData or
// Image.Stage: how long it says it is and where it should go.
type DataIn struct {
	// Size is the announced length in bytes, 0 when unknown. A stream that
	// turns out shorter or longer than a non-zero Size is refused.
	Size int64
	// Store is the id of the backend that receives the data (the
	// X-Image-Meta-Store header, or one store of an import); "" means the
	// default backend. It is ignored without multi-store.
	Store string
	// Import marks data brought in by an import task rather than PUT /file:
	// the image is importing (or active, for copy-image) instead of queued.
	Import bool
	// Activate, with Import, makes an importing image active once its data
	// is stored. It is false while an import still has other stores to
	// fill and must leave the image importing.
	Activate bool
}
