package rabbit

// NewIdle returns a sink whose publisher has not started; start starts it.
func NewIdle(cfg Config) (s *Sink, start func(), err error) {
	s, err = newSink(cfg)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { go s.run() }, nil
}
