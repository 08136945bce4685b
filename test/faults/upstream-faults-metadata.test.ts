import t from 'tap'
import { testFaultsIn } from './upstream-fault-matrix.js'

testFaultsIn(t, 'metadata')
